#!/usr/bin/env bash
# `make bench`: release builds of every benchmark under //tests/bench, each run once,
# results as Google Benchmark JSON in bench/results/. Later stages (zcbench, the
# server comparison) add their own steps here.
set -euo pipefail
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
results=bench/results
mkdir -p "$results"

targets=$("$BAZEL" query --noshow_progress 'kind("cc_binary", //tests/bench/...)' 2>/dev/null || true)
if [ -z "$targets" ]; then
  echo "bench: no benchmark binaries under //tests/bench yet"
  exit 0
fi
"$BAZEL" build --config=release $targets
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)
for label in $targets; do
  path=${label#//}
  path=${path/://}
  name=$(basename "$path")
  echo "== $label"
  "$bin/$path" --benchmark_out="$results/$name.json" --benchmark_out_format=json
done
echo "bench: results in $results/"
