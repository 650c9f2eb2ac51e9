#!/usr/bin/env bash
# Runs one Python 3 test driver (standard library only) without Bazel's Python
# toolchain: run_py_test.sh TEST.py ARGS... The driver's own folder and tests/pylib
# (junit_unittest) are on its import path.
set -euo pipefail
script=$1
shift
pylib="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-pagewire}/tests/pylib"
export PYTHONPATH="$(dirname "$script"):${pylib}${PYTHONPATH:+:$PYTHONPATH}"
exec python3 "$script" "$@"
