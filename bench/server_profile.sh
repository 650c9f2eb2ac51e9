#!/usr/bin/env bash
# Server profile (issue 7): user-space work per request of sendfile_server, the figures
# that stay meaningful on a loaded, shared machine where requests/s do not:
#   - instructions/request: valgrind --tool=callgrind on the release server, counters
#     zeroed (callgrind_control -z) after startup and a warm-up request, so startup is
#     subtracted; requests counted by wrk;
#   - allocations/request: bench/tools/malloc_count.c preloaded, totals read on SIGUSR2
#     before and after the load;
#   - syscalls/request (all, io_uring_enter, openat2): strace -c -f attached after
#     startup; the same for nginx's worker (1 worker, sendfile on, tcp_nopush,
#     open_file_cache, as in bench/server_compare.sh).
# Each cell runs `wrk -t1 -cCONNS -dDURATION` against a fresh server; the server is
# pinned to SERVER_CPU and wrk to LOAD_CPU. Every process it starts is stopped on exit.
#
# Usage: bench/server_profile.sh [OUT.md]
# Env:   FILES ("1k.bin 64k.bin 1m.bin"), DURATION (4), CONNS (16), SERVER_CPU (0),
#        LOAD_CPU (1), PW_ARGS (extra sendfile_server flags, e.g. "--compress gzip,zstd"),
#        NGINX (1; 0 skips nginx), BAZEL (bazel), SKIP_BUILD=1 (reuse the release build),
#        SERVER (a sendfile_server binary to profile instead of the release build's, e.g. a
#        saved copy of an earlier commit's, for before/after figures).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
source bench/nginx_conf.sh

BAZEL=${BAZEL:-bazel}
FILES=${FILES:-1k.bin 64k.bin 1m.bin}
DURATION=${DURATION:-4}
CONNS=${CONNS:-16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PW_ARGS=${PW_ARGS:-}
NGINX=${NGINX:-1}
OUT=${1:-bench/results/server_profile.md}
PORT=${PORT:-18090}

for tool in wrk valgrind callgrind_control strace curl cc; do
  command -v "$tool" >/dev/null || { echo "server_profile: needs $tool" >&2; exit 1; }
done
if [[ $NGINX == 1 ]] && ! command -v nginx >/dev/null; then
  echo "server_profile: needs nginx (nginx-light) or NGINX=0" >&2
  exit 1
fi

if [[ -z "${SKIP_BUILD:-}" ]]; then
  "$BAZEL" build --config=release //apps/sendfile_server //apps/demo:demo_root >&2
fi
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)
server=${SERVER:-$bin/apps/sendfile_server/sendfile_server}
root=$bin/apps/demo/demo_root
require_demo_files server_profile "$root" $FILES

bench_tmp server_profile

cc -O2 -shared -fPIC -o "$tmp/malloc_count.so" bench/tools/malloc_count.c

wait_port() {  # wait_port PORT FILE: up to 60 s (valgrind starts slowly)
  for _ in $(seq 600); do
    curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$1/$2" && return 0
    sleep 0.1
  done
  echo "server_profile: server did not come up" >&2
  cat "$tmp"/server.out >&2 || true
  exit 1
}

# start CMD...: runs the server in the background on SERVER_CPU; sets $spid.
start() {
  taskset -c "$SERVER_CPU" "$@" >"$tmp/server.out" 2>&1 &
  spid=$!
  pids+=("$spid")
}

# stop PID: SIGINT (graceful), SIGKILL after 30 s.
stop() {
  kill -INT "$1" 2>/dev/null || true
  for _ in $(seq 300); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

load() {  # load PORT FILE: sets $requests (completed, as wrk counts them)
  local out
  out=$(timeout $((DURATION + 30)) taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
    "http://127.0.0.1:$1/$2" 2>&1)
  if grep -q "Non-2xx" <<<"$out"; then echo "server_profile: non-2xx for $2" >&2; fi
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
}

per() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
per0() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", a / b; else print "n/a" }'; }

pw=("$server" --root "$root" --listen "127.0.0.1:$PORT" --threads 1)
# shellcheck disable=SC2206
pw+=($PW_ARGS)

# The measurements set globals (no subshells, so the EXIT trap sees every pid).
instructions() {  # instructions FILE: sets ir, ir_req
  start valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "${pw[@]}"
  wait_port "$PORT" "$1"
  callgrind_control -z "$spid" >/dev/null 2>&1
  load "$PORT" "$1"
  ir_req=$requests
  # Dump (cg.out.1: everything since the zeroing) rather than rely on a clean exit: under
  # valgrind the server's sigwait() shutdown is slow to come.
  rm -f "$tmp/cg.out.1"
  callgrind_control -d "$spid" >/dev/null 2>&1
  for _ in $(seq 100); do
    grep -q '^totals:' "$tmp/cg.out.1" 2>/dev/null && break
    sleep 0.1
  done
  kill -KILL "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  ir=$(awk '/^totals:/ {print $2; exit}' "$tmp/cg.out.1")
}

allocations() {  # allocations FILE: sets allocs, allocs_req
  rm -f "$tmp/mc.txt"
  start env LD_PRELOAD="$tmp/malloc_count.so" MALLOC_COUNT_OUT="$tmp/mc.txt" "${pw[@]}"
  wait_port "$PORT" "$1"
  kill -USR2 "$spid"
  sleep 0.2
  load "$PORT" "$1"
  allocs_req=$requests
  kill -USR2 "$spid"
  sleep 0.2
  stop "$spid"
  allocs=$(awk -F'[= ]' 'NR == 1 {a = $3} NR == 2 {print $3 - a}' "$tmp/mc.txt")
}

# syscalls PORT FILE PID...: strace -c -f attached to the PIDs (and their threads) for one
# load; sets sc_total, sc_uring, sc_openat2, sc_req.
syscalls() {
  local port=$1 f=$2
  shift 2
  local args=()
  for p in "$@"; do args+=(-p "$p"); done
  timeout $((DURATION + 60)) strace -f -c -qq -o "$tmp/strace.txt" "${args[@]}" &
  local st=$!
  pids+=("$st")
  sleep 1  # attached
  load "$port" "$f"
  sc_req=$requests
  kill -INT "$st" 2>/dev/null || true
  wait "$st" 2>/dev/null || true
  read -r sc_total sc_uring sc_openat2 < <(awk '
    $NF == "total" {t = $4}
    $NF == "io_uring_enter" {u = $4}
    $NF == "openat2" {o = $4}
    END {printf "%d %d %d\n", t, u, o}' "$tmp/strace.txt")
}

if [[ $NGINX == 1 ]]; then
  NPORT=$((PORT + 1))
  write_nginx_conf "$tmp/nginx" "$root" "$NPORT"
fi

mkdir -p "$(dirname "$OUT")"
: >"$OUT"
emit() { echo "$*" | tee -a "$OUT"; }
emit "| file | pagewire instr/req | allocs/req | syscalls/req | io_uring_enter/req | openat2/req | nginx syscalls/req |"
emit "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for f in $FILES; do
  instructions "$f"
  allocations "$f"
  start "${pw[@]}"
  wait_port "$PORT" "$f"
  syscalls "$PORT" "$f" "$spid"
  stop "$spid"
  ng="n/a"
  if [[ $NGINX == 1 ]]; then
    start nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
    wait_port "$NPORT" "$f"
    pw_sc=("$sc_total" "$sc_uring" "$sc_openat2" "$sc_req")
    # shellcheck disable=SC2046
    syscalls "$NPORT" "$f" $(pgrep -P "$spid")
    stop "$spid"
    ng=$(per "$sc_total" "$sc_req")
    echo "$f: nginx strace $sc_total calls / $sc_req req" >>"$tmp/raw"
    read -r sc_total sc_uring sc_openat2 sc_req <<<"${pw_sc[*]}"
  fi
  emit "| $f | $(per0 "$ir" "$ir_req") | $(per "$allocs" "$allocs_req") | $(per "$sc_total" "$sc_req") | $(per "$sc_uring" "$sc_req") | $(per "$sc_openat2" "$sc_req") | $ng |"
  echo "$f: callgrind $ir Ir / $ir_req req; malloc $allocs / $allocs_req req; strace $sc_total calls / $sc_req req" >>"$tmp/raw"
done
emit ""
emit "wrk -t1 -c$CONNS -d${DURATION}s per cell, fresh server each; server on CPU $SERVER_CPU, wrk on"
emit "CPU $LOAD_CPU; $(nproc) CPUs, $(uname -r); load before: $load_before, after: $(cut -d' ' -f1-3 /proc/loadavg)."
emit "pagewire flags: --threads 1 ${PW_ARGS:-(none)}. Raw counts:"
emit ""
while read -r line; do emit "    $line"; done <"$tmp/raw"
