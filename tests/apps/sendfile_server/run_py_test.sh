#!/usr/bin/env bash
# Runs one of sendfile_server's Python 3 tests (standard library only) without Bazel's
# Python toolchain: run_py_test.sh TEST.py ARGS...
set -euo pipefail
script=$1
shift
export PYTHONPATH="$(dirname "$script")${PYTHONPATH:+:$PYTHONPATH}"
exec python3 "$script" "$@"
