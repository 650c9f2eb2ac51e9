#!/usr/bin/env bash
# `make bench`: one run of every measurement, release builds, results in bench/results/:
#   1. the Google Benchmark suites under //tests/bench (JSON, medians of repetitions);
#   2. zcbench over every transmit path (table, JSON, SVG); filter paths (TLS, gzip,
#      zstd) get a smaller --bytes since they are CPU-bound;
#   3. the server comparison: sendfile_server vs nginx vs the Asio baseline (wrk);
#   4. summary.md, the Markdown summary of all of the above.
# Env: ZCBENCH_BYTES (1G), ZCBENCH_FILTER_BYTES (256M), ZCBENCH_REPEAT (3),
#      BENCH_REPETITIONS (5), DURATION (seconds per server cell, 5).
set -euo pipefail
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
results=bench/results
mkdir -p "$results"
rm -f "$results"/*.json "$results"/*.svg "$results"/*.txt "$results"/*.md

# Google Benchmark binaries; filters_bench has its own harness (step 2b).
targets=$("$BAZEL" query --noshow_progress \
  'kind("cc_binary", //tests/bench/...) except //tests/bench:filters_bench' 2>/dev/null)
"$BAZEL" build --config=release $targets //tests/bench:filters_bench //apps/zcbench //apps/sendfile_server \
  //apps/asio_file_server //apps/demo:demo_root
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)

for label in $targets; do
  path=${label#//}
  path=${path/://}
  name=$(basename "$path")
  echo "== $label"
  "$bin/$path" --benchmark_repetitions="${BENCH_REPETITIONS:-5}" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$results/$name.json" --benchmark_out_format=json
done

zcbench=$bin/apps/zcbench/zcbench
all_paths=$("$zcbench" --list-paths | awk '{print $1}')
filter_paths=$(grep -E '^pw_(tls|gzip|zstd|deflate)' <<<"$all_paths" | paste -sd, - || true)
transmit_paths=$(grep -vE '^pw_(tls|gzip|zstd|deflate)' <<<"$all_paths" | paste -sd, -)

echo "== zcbench: transmit paths"
"$zcbench" --bytes "${ZCBENCH_BYTES:-1G}" --repeat "${ZCBENCH_REPEAT:-3}" \
  --paths "$transmit_paths" --json "$results/zcbench.json" --svg "$results/zcbench.svg" |
  tee "$results/zcbench.txt"
if [ -n "$filter_paths" ]; then
  echo "== zcbench: filter paths"
  "$zcbench" --bytes "${ZCBENCH_FILTER_BYTES:-256M}" --repeat "${ZCBENCH_REPEAT:-3}" \
    --transport loopback --sizes 64K,1M --paths "copy,$filter_paths" \
    --json "$results/zcbench_filters.json" --svg "$results/zcbench_filters.svg" |
    tee "$results/zcbench_filters.txt"
fi

echo "== filters_bench: TLS ciphers, gzip and zstd levels over loopback"
"$bin/tests/bench/filters_bench" --bytes "${ZCBENCH_FILTER_BYTES:-256M}" \
  --repeat "${ZCBENCH_REPEAT:-3}" | tee "$results/filters_bench.txt"
echo "== openssl speed (the cipher's limit, for the TLS rows)"
openssl speed -evp aes-128-gcm -bytes 16384 -seconds 2 2>/dev/null | tail -1 |
  tee "$results/openssl_speed.txt"

echo "== server comparison"
SKIP_BUILD=1 bash bench/server_compare.sh "$results/server_compare.md"

python3 bench/summarize.py "$results" >"$results/summary.md"
echo "bench: results in $results/ (summary: $results/summary.md)"
