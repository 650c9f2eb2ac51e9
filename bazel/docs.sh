#!/usr/bin/env bash
# `make docs`: the API reference of the library layers (runtime, fs, net, filters) from the
# `///` comments of their public headers, with doxygen and bazel/Doxyfile, into OUT (default
# docs/, git-ignored; open OUT/html/index.html). Fails on any doxygen warning, and when a
# public header's page lacks the opening block that says what the file holds.
# `make test` runs it into a temporary folder (bazel/docs_test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-docs}
rm -rf "$out/html"
mkdir -p "$out"
if ! { cat bazel/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; } | doxygen - >"$out/doxygen.log" 2>&1; then
  cat "$out/doxygen.log" >&2
  echo "docs: doxygen reported the warnings above" >&2
  exit 1
fi
missing=0
for header in $(git ls-files 'runtime/*.h' 'fs/*.h' 'net/*.h' 'filters/*.h'); do
  page=$(grep -l -F "<title>pagewire: $header File Reference</title>" "$out"/html/*_8h.html || true)
  if [ -z "$page" ] || ! grep -q 'Detailed Description' "$page"; then
    echo "docs: $header has no file description in the reference" >&2
    missing=1
  fi
done
[ "$missing" -eq 0 ] || exit 1
echo "docs: $out/html/index.html"
