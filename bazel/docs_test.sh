#!/usr/bin/env bash
# `make test`'s check of the API reference: bazel/docs.sh into a temporary folder. Exit 0 and
# one line "docs: ok" when doxygen warned about nothing and every public header has its page.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash bazel/docs.sh "$out" >/dev/null
echo "docs: ok"
