#!/usr/bin/env bash
# `make bench`: release builds of every benchmark under //tests/bench, each run once
# (Google Benchmark JSON), then zcbench over every transmit path (table, JSON, SVG).
# Results land in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
results=bench/results
mkdir -p "$results"

targets=$("$BAZEL" query --noshow_progress 'kind("cc_binary", //tests/bench/...)' 2>/dev/null)
"$BAZEL" build --config=release $targets //apps/zcbench
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)
for label in $targets; do
  path=${label#//}
  path=${path/://}
  name=$(basename "$path")
  echo "== $label"
  "$bin/$path" --benchmark_out="$results/$name.json" --benchmark_out_format=json
done
echo "== zcbench"
"$bin/apps/zcbench/zcbench" --bytes "${ZCBENCH_BYTES:-1G}" --repeat "${ZCBENCH_REPEAT:-3}" \
  --json "$results/zcbench.json" --svg "$results/zcbench.svg" | tee "$results/zcbench.txt"
echo "bench: results in $results/"
