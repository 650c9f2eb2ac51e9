#!/usr/bin/env bash
# `make bench`: one run of every measurement, release builds, results in bench/results/:
#   1. the Google Benchmark suites under //tests/bench (JSON, medians of repetitions);
#   2. zcbench over every transmit path (table, JSON, SVG); then zcbench over the paths
#      that transform the stream (pagewire's TLS, gzip and zstd stacks and their raw
#      OpenSSL/zlib/zstd loops; the receiver decodes), with a smaller --bytes since they are
#      CPU-bound (gzip -6 runs near 0.1 GB/s here), and openssl speed as the cipher's limit;
#   3. the server comparison: sendfile_server vs nginx vs the Asio baseline (wrk);
#   4. summary.md, the Markdown summary of all of the above.
# Env: ZCBENCH_BYTES (512M), ZCBENCH_FILTER_BYTES (256M), ZCBENCH_REPEAT (5: rounds, one
#      trial of every path per round; a cell's median, its ratios paired by round; 5 rounds
#      of 512M take less time than 3 of 1G and leave a median that one odd trial cannot
#      move), ZCBENCH_PIN
#      (sender,receiver CPUs of every zcbench run, "1,1"), ZCBENCH_CONGESTION (the TCP
#      congestion control of every zcbench trial, cubic; "system": the machine's default),
#      ZCBENCH_RECV (the transmit paths' receiver, splice; "copy": recv into a buffer),
#      BENCH_REPETITIONS (5), DURATION (seconds per wrk run, 3), ROUNDS (wrk runs per
#      server and file, 3; medians).
# The issue's budget is 15 minutes on a 2-core machine, build included: each phase's seconds
# go to timing.txt and the summary's first lines.
set -euo pipefail
cd "$(dirname "$0")/.."
bench_start=$SECONDS
phase() {  # phase NAME: the seconds since the last phase ended, under NAME
  echo "$1 $((SECONDS - phase_start))" >>"$results/timing.txt"
  phase_start=$SECONDS
}

BAZEL=${BAZEL:-bazel}
results=bench/results
mkdir -p "$results"
rm -f "$results"/*.json "$results"/*.svg "$results"/*.txt "$results"/*.md
phase_start=$SECONDS
# Other work on the machine skews every figure: keep the load average at start and end.
echo "start $(cut -d' ' -f1-3 /proc/loadavg)" >"$results/loadavg.txt"

# Google Benchmark binaries. filters_bench (its own harness) is not run: zcbench's filter
# paths measure the same stacks, decoded at the receiver, next to their raw loops.
targets=$("$BAZEL" query --noshow_progress \
  'kind("cc_binary", //tests/bench/...) except //tests/bench:filters_bench' 2>/dev/null)
"$BAZEL" build --config=release $targets //apps/zcbench //apps/sendfile_server \
  //apps/asio_file_server //apps/discard_load //apps/demo:demo_root
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)
phase build

for label in $targets; do
  path=${label#//}
  path=${path/://}
  name=$(basename "$path")
  echo "== $label"
  "$bin/$path" --benchmark_repetitions="${BENCH_REPETITIONS:-5}" \
    --benchmark_report_aggregates_only=true \
    --benchmark_out="$results/$name.json" --benchmark_out_format=json
done
phase "Google Benchmark suites"

zcbench=$bin/apps/zcbench/zcbench
all_paths=$("$zcbench" --list-paths | awk '{print $1}')
# Paths that transform the stream: pagewire's (pw_tls_*, pw_gzip*, ...) and their raw loops
# (tls_raw_*, gzip_raw*, zstd_raw*).
filter_re='^(pw_)?(tls|gzip|zstd|deflate)'
filter_paths=$(grep -E "$filter_re" <<<"$all_paths" | paste -sd, - || true)
transmit_paths=$(grep -vE "$filter_re" <<<"$all_paths" | paste -sd, -)

# Every zcbench run puts sender and receiver threads on one core (ZCBENCH_PIN, "S,R"): each
# trial then measures the CPU work of its path. On separate cores (or unpinned) every wake-up
# of the other thread is a cross-CPU interrupt, which costs the waker tens of microseconds on
# this VM, and a path's GB/s moves by up to 2x with how often its trials happen to sleep
# (net/README.md, apps/zcbench/README.md).
pin=${ZCBENCH_PIN:-$(($(nproc) > 1 ? 1 : 0)),$(($(nproc) > 1 ? 1 : 0))}
# Every zcbench trial sends under cubic unless ZCBENCH_CONGESTION names another ("system": the
# machine's default). A default of bbr without an fq qdisc (this VM's) has the kernel pace
# each connection itself with an hrtimer: every 16 MiB path is then held near one pacing
# rate (loopback sendfile 2.3 GB/s, copy 2.7; under cubic 6.5-6.7 and 3.3-4.0), so the
# large cells show the pacer instead of the zero-copy gain, and at 4 KiB over veth the
# pacing timer took a fifth of the sender's CPU samples (apps/zcbench/README.md).
# zcbench checks the name itself: one the kernel lacks stops the run with its reason.
congestion=${ZCBENCH_CONGESTION:-cubic}
congestion_args=()
[[ $congestion == system ]] || congestion_args=(--congestion "$congestion")
# The transmit paths' receiver splices to /dev/null (ZCBENCH_RECV, "copy" to recv into a
# buffer): it shares the sender's core, and one that copies 256 KiB per call puts each trial
# in one of two states (whether the sender preempts it inside its copy, holding its socket
# lock, so that it also does the protocol work), one 7-23% faster than the other; which one
# a trial finds, not the path, then decided a cell's ratio to its raw loop: the spread of the
# trial pairs over veth at 1 MiB was 0.192 (sd) with the copying receiver, 0.014 with this
# one (apps/zcbench/README.md). The paths that transform the stream decode, so recv copies.
recv=${ZCBENCH_RECV:-splice}
echo "== zcbench: transmit paths (--pin $pin, --recv $recv)"
"$zcbench" --bytes "${ZCBENCH_BYTES:-512M}" --repeat "${ZCBENCH_REPEAT:-5}" --pin "$pin" \
  "${congestion_args[@]}" --recv "$recv" --paths "$transmit_paths" \
  --json "$results/zcbench.json" --svg "$results/zcbench.svg" |
  tee "$results/zcbench.txt"
phase "zcbench transmit paths"
if [ -n "$filter_paths" ]; then
  echo "== zcbench: filter paths"
  "$zcbench" --bytes "${ZCBENCH_FILTER_BYTES:-256M}" --repeat "${ZCBENCH_REPEAT:-5}" --pin "$pin" \
    "${congestion_args[@]}" \
    --transport loopback --sizes 64K,1M --paths "copy,$filter_paths" \
    --json "$results/zcbench_filters.json" --svg "$results/zcbench_filters.svg" |
    tee "$results/zcbench_filters.txt"
  # TLS again from a 1 MiB window that stays in cache (a hot file), the same footing as
  # openssl speed's 16 KiB buffer; the run above sends from a 64 MiB window (a large file).
  tls_paths=$(tr , '\n' <<<"$filter_paths" | grep tls | paste -sd, -)
  echo "== zcbench: TLS paths from a 1 MiB window"
  "$zcbench" --bytes "${ZCBENCH_BYTES:-512M}" --repeat "${ZCBENCH_REPEAT:-5}" --pin "$pin" \
    "${congestion_args[@]}" --transport loopback --sizes 1M --window 1M --paths "$tls_paths" \
    --json "$results/zcbench_filters_hot.json" | tee "$results/zcbench_filters_hot.txt"
  phase "zcbench filter paths"
fi

echo "== openssl speed (each TLS suite's cipher limit on one core, 16 KiB blocks)"
for cipher in aes-128-gcm aes-256-gcm chacha20-poly1305; do
  openssl speed -evp "$cipher" -bytes 16384 -seconds 2 2>/dev/null | tail -1 |
    awk -v c="$cipher" '{print c, $NF}'
done | tee "$results/openssl_speed.txt"

echo "== server comparison"
# A failed measurement leaves n/a cells in its table: the summary is still written, and the
# run fails at the end.
compare_status=0
SKIP_BUILD=1 bash bench/server_compare.sh "$results/server_compare.md" || compare_status=$?
phase "openssl speed + server comparison"
echo "total $((SECONDS - bench_start))" >>"$results/timing.txt"

echo "end $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/loadavg.txt"
python3 bench/summarize.py "$results" >"$results/summary.md"
echo "bench: results in $results/ (summary: $results/summary.md)"
if ((compare_status != 0)); then
  echo "bench: the server comparison failed (status $compare_status; see above)" >&2
  exit "$compare_status"
fi
