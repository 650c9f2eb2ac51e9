#!/usr/bin/env bash
# Server comparison for `make bench` (issue 7 / issue 8): requests/s of
# sendfile_server vs nginx (Debian's nginx-light: 1 worker, sendfile on, tcp_nopush on,
# open_file_cache) vs apps/asio_file_server (the Asio baseline), all serving the demo
# root, measured with wrk on loopback in one run. Each server is pinned to one core
# (taskset), wrk to another. Access logs are off for every server. A second table measures
# 1m.bin again with apps/discard_load, which drops response bodies in the kernel instead of
# copying them as wrk does: at 1 MiB wrk's copy is the ceiling of a fast server.
#
# Usage: bench/server_compare.sh [OUT.md]
# Env:   DURATION (seconds per cell, default 3), SERVER_CPU (0), LOAD_CPU (1),
#        BAZEL (bazel), SKIP_BUILD=1 (reuse the release binaries).
# Prints one Markdown table (and writes it to OUT.md, default
# bench/results/server_compare.md). A measurement that fails (non-2xx responses, wrk socket
# errors or no result, a server process that is gone) shows "n/a" where its figures would be
# meaningless; the table is finished, the failures are listed on stderr (server, file,
# reason, wrk's output), OUT.md says the comparison failed, and the exit status is 1.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
source bench/nginx_conf.sh

BAZEL=${BAZEL:-bazel}
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${1:-bench/results/server_compare.md}
PORT_PW=${PORT_PW:-18080}
PORT_NGINX=${PORT_NGINX:-18081}
PORT_ASIO=${PORT_ASIO:-18082}
PORT_PW_TLS=${PORT_PW_TLS:-18443}
PORT_NGINX_TLS=${PORT_NGINX_TLS:-18444}

need() { command -v "$1" >/dev/null 2>&1 || PKGS="${PKGS:-} $2"; }
need wrk wrk
need nginx nginx-light
if [[ -n "${PKGS:-}" ]]; then
  echo "server_compare: installing${PKGS}" >&2
  apt-get install -y -q $PKGS >/dev/null
fi

if [[ -z "${SKIP_BUILD:-}" ]]; then
  "$BAZEL" build --config=release //apps/sendfile_server //apps/asio_file_server \
    //apps/discard_load //apps/demo:demo_root >&2
fi
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)
root=$bin/apps/demo/demo_root
require_demo_files server_compare "$root" 1k.bin 64k.bin 1m.bin 64m.bin

bench_tmp server_compare

# HTTPS rows: one self-signed ECDSA P-256 certificate for both servers; TLS 1.3 only on
# nginx (pagewire's default range is 1.2-1.3 and wrk's OpenSSL picks 1.3), both with
# OpenSSL's default TLS 1.3 suite preference, session tickets off.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# nginx: its own config and prefix in the temp dir; never touches /etc/nginx's server.
write_nginx_conf "$tmp/nginx" "$root" "$PORT_NGINX" "$PORT_NGINX_TLS" "$tmp/cert.pem" "$tmp/key.pem"

declare -A server_pid  # port -> the pid taskset became (nginx: its master)
declare -A server_name server_log  # port -> the name start was given, its output file
start() {  # start NAME PORT CMD...: pinned to SERVER_CPU, waits for the port
  local name=$1 port=$2 scheme=http
  shift 2
  server_name[$port]=$name
  server_log[$port]=$tmp/$name.out
  [[ $name == *-tls ]] && scheme=https
  # Something already listening there would answer in the server's place (or, through
  # SO_REUSEPORT, beside it) and every figure would be wrong.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "server_compare: port $port is already in use; stop what listens there" \
      "or set PORT_* (see the top of $0)" >&2
    exit 1
  fi
  taskset -c "$SERVER_CPU" "$@" >"$tmp/$name.out" 2>&1 &
  pids+=($!)
  server_pid[$port]=$!
  for _ in $(seq 100); do
    curl -skf -o /dev/null "$scheme://127.0.0.1:$port/1k.bin" && return 0
    sleep 0.1
  done
  echo "server_compare: $name did not come up:" >&2
  cat "$tmp/$name.out" >&2
  exit 1
}

start pagewire "$PORT_PW" "$bin/apps/sendfile_server/sendfile_server" --root "$root" \
  --listen "127.0.0.1:$PORT_PW" --threads 1
start nginx "$PORT_NGINX" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf"
server_pid[$PORT_NGINX_TLS]=${server_pid[$PORT_NGINX]}  # one nginx serves both ports
server_name[$PORT_NGINX_TLS]=nginx-tls
server_log[$PORT_NGINX_TLS]=${server_log[$PORT_NGINX]}
start pagewire-tls "$PORT_PW_TLS" "$bin/apps/sendfile_server/sendfile_server" --root "$root" \
  --listen "127.0.0.1:$PORT_PW_TLS" --threads 1 --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem"
start asio "$PORT_ASIO" "$bin/apps/asio_file_server/asio_file_server" --root "$root" \
  --listen "127.0.0.1:$PORT_ASIO" --threads 1

# Connections per size: 64, enough that a fast server keeps wrk's core busy. At 1 MiB, 16
# connections left each run in one of two states (wrk sleeping between a server's sends and
# woken once per packet, each wake-up a costly cross-CPU interrupt on this VM; or wrk never
# idle) and requests/s swung 2-3x between runs of one binary. 64 MiB files: 4, since 64
# connections put up to 4 GiB in flight and the loopback receiver drops segments (TCPRcvQDrop)
# for every server, collapsing to a few requests/s.
conns() {
  case $1 in
    64m.bin) echo 4 ;;
    *) echo 64 ;;
  esac
}

# wrk's per-request timeout (a timeout fails the measurement). 64 MiB files: 10 s instead of
# wrk's 2 s. wrk reads a readable socket until it is empty, and a fast server refills it while
# it reads, so one response can wait behind the others' whole bodies: in 8 runs of 3 s with
# 4 connections, the slowest pagewire response took 0.3-1.6 s and the slowest nginx one
# 0.37-1.19 s, while curl clients (4 loops of `curl -o /dev/null` for 4 s) saw at most
# 149 ms from pagewire and 268 ms from nginx. At 2 s one run in several failed on a client
# artifact; 10 s still fails a response that stalls.
wrk_timeout() {
  case $1 in
    64m.bin) echo 10s ;;
    *) echo 2s ;;
  esac
}

# Nanoseconds on CPU of the server behind PORT: every thread of its process and of its
# children (nginx's worker, io_uring's io-wq workers), from /proc/*/task/*/schedstat.
cpu_ns() {
  local root=${server_pid[$1]} total=0 p t ns _
  for p in "$root" $(pgrep -P "$root" || true); do
    for t in /proc/"$p"/task/*/schedstat; do
      read -r ns _ 2>/dev/null <"$t" && total=$((total + ns))  # a thread may be gone
    done
  done
  echo "$total"
}

# Busy time of wrk's core so far, in clock ticks (/proc/stat: user, nice, system, irq,
# softirq, steal). It counts what the kernel does there for the server too: delivering the
# server's segments when wrk's ACKs release them, and waking the server's thread.
HZ=$(getconf CLK_TCK)
load_cpu_ticks() {
  awk -v c="cpu$LOAD_CPU" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

# alive PID: PID is a running process (not gone, not a zombie: a server that died stays one,
# unwaited for, until the script ends).
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }  # past "pid (comm) ": the state letter comes first
  [[ ${stat%% *} != [ZX] ]]
}

# fail PORT FILE REASON [WRK_OUTPUT]: records a failed measurement and sets the caller's
# `failed`; the failures are reported after the table (rps runs in a subshell: they go to files).
fail() {
  echo "${server_name[$1]} (port $1), $2: $3" >>"$tmp/failed"
  if [[ -n ${4:-} ]] && ((!failed)); then  # one run's output once, whatever else went wrong
    { echo "--- ${server_name[$1]} (port $1), $2:"; echo "$4"; } >>"$tmp/failed.details"
  fi
  failed=1
}

# The load generators. Each prints its output; a run's requests and requests/s are read
# from it by requests_and_rate.
# wrk PORT FILE SCHEME: one thread, conns connections.
wrk_client() {
  taskset -c "$LOAD_CPU" wrk -t1 -c"$(conns "$2")" -d"${DURATION}s" \
    --timeout "$(wrk_timeout "$2")" "$3://127.0.0.1:$1/$2" 2>&1
}
# discard_load PORT FILE (http only): 64 connections, bodies dropped in the kernel.
discard_client() {
  taskset -c "$LOAD_CPU" "$bin/apps/discard_load/discard_load" --port "$1" --path "/$2" \
    --connections 64 --duration "$DURATION" 2>&1
}
# requests_and_rate < OUTPUT -> "requests requests/s" of $CLIENT's output.
requests_and_rate() {
  if [[ $CLIENT == wrk_client ]]; then
    awk '/requests in/ {n = $1} /Requests\/sec/ {r = $2} END { print n + 0, r }'
  else
    tr ' ' '\n' | awk -F= '$1 == "requests" {n = $2} $1 == "requests_per_sec" {r = $2}
      END { print n + 0, r }'
  fi
}

# rps PORT FILE [SCHEME] -> "requests/s server-CPU-µs-per-request load-core-µs-per-request"
# measured with $CLIENT, or "n/a n/a n/a" when the run failed (see fail): its figures would
# mean nothing, and a server that died takes its CPU time with it (the difference could even
# be negative).
rps() {
  local out before after load_before load_after status=0 errors failed=0 n r
  if ! alive "${server_pid[$1]}"; then
    fail "$1" "$2" "server process is not running; not measured"
    echo "n/a n/a n/a"
    return 0
  fi
  before=$(cpu_ns "$1")
  load_before=$(load_cpu_ticks)
  out=$("$CLIENT" "$1" "$2" "${3:-http}") || status=$?
  load_after=$(load_cpu_ticks)
  after=$(cpu_ns "$1")
  # A server answering errors, dropping connections or gone is fast at it.
  if ! alive "${server_pid[$1]}"; then
    fail "$1" "$2" "server process died during the run" \
      "$out"$'\n'"server output (last lines):"$'\n'"$(tail -n 5 "${server_log[$1]}" 2>/dev/null)"
  fi
  # discard_load's status is 1 for any failed response (non-200, reset, stall); wrk's is 0
  # through them all, and its output says.
  if ((status != 0)); then fail "$1" "$2" "$CLIENT exited with status $status" "$out"; fi
  if [[ $CLIENT == wrk_client ]]; then
    if grep -q "Non-2xx" <<<"$out"; then fail "$1" "$2" "non-2xx responses" "$out"; fi
    errors=$(sed -n 's/^ *Socket errors: *//p' <<<"$out")
    if grep -q '[1-9]' <<<"$errors"; then fail "$1" "$2" "wrk socket errors ($errors)" "$out"; fi
  fi
  read -r n r < <(requests_and_rate <<<"$out")
  if [[ -z $r ]]; then fail "$1" "$2" "$CLIENT reported no result" "$out"; fi
  if ((failed)); then
    echo "n/a n/a n/a"
    return 0
  fi
  awk -v n="$n" -v r="$r" -v ns=$((after - before)) -v ticks=$((load_after - load_before)) \
    -v hz="$HZ" 'BEGIN { printf "%s %.1f %.1f\n", r, (n > 0 ? ns / n / 1000 : 0), (n > 0 ? ticks * 1e6 / hz / n : 0) }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'function num(x) { return x ~ /^[0-9]+(\.[0-9]*)?$/ }
    BEGIN { if (num(a) && num(b) && b > 0) printf "%.2fx", a / b; else print "n/a" }'
}

# median: of the numbers on stdin; "n/a" when any is.
median() { tr ' ' '\n' | grep . | sort -g | awk '$1 == "n/a" {na = 1} {v[NR] = $1} END { if (na) print "n/a"; else if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# measure FILE SCHEME PORT...: ROUNDS runs of $CLIENT (wrk_client or discard_client) per
# server, taking turns (round r starts
# with server r mod N) so a slow spell on the machine spreads over all of them; prints
# each server's median requests/s, in the order given, then each server's median CPU
# µs per request, then the median µs of wrk's core per request, and "min-max" spreads of
# requests/s on fd 3.
measure() {
  local f=$1 scheme=$2
  shift 2
  local ports=("$@") n=$#
  local -a runs cpus loads
  local rate cpu load
  for p in "${ports[@]}"; do curl -sk -o /dev/null "$scheme://127.0.0.1:$p/$f" || true; done
  for ((r = 0; r < ROUNDS; r++)); do
    for ((i = 0; i < n; i++)); do
      local k=$(((i + r) % n))
      read -r rate cpu load < <(rps "${ports[k]}" "$f" "$scheme")
      runs[k]="${runs[k]:-} $rate"
      cpus[k]="${cpus[k]:-} $cpu"
      loads[k]="${loads[k]:-} $load"
    done
  done
  local out=() cpu_out=() load_out=() spread=()
  for ((i = 0; i < n; i++)); do
    out+=("$(median <<<"${runs[i]}")")
    cpu_out+=("$(median <<<"${cpus[i]}")")
    load_out+=("$(median <<<"${loads[i]}")")
    if [[ ${runs[i]} == *n/a* ]]; then
      spread+=(n/a)
    else
      spread+=("$(tr ' ' '\n' <<<"${runs[i]}" | grep . | sort -g | sed -n '1p;$p' | paste -sd- -)")
    fi
  done
  echo "${out[*]} ${cpu_out[*]} ${load_out[*]}"
  echo "$f $scheme$([[ $CLIENT == discard_client ]] && echo " (discard_load)"): ${spread[*]}" >&3
}

# cpu_ratio A B: how many times less CPU per request A needs than B ("2.00x" = half).
cpu_ratio() { ratio "$2" "$1"; }

mkdir -p "$(dirname "$OUT")"
spreads=$tmp/spreads
CLIENT=wrk_client
{
  echo "| file | pagewire req/s | nginx req/s | asio req/s | pagewire/nginx | pagewire/asio | CPU µs/req pagewire / nginx / asio | CPU/req nginx/pagewire | CPU/req asio/pagewire | wrk's core µs/req pagewire / nginx / asio |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  for f in 1k.bin 64k.bin 1m.bin 64m.bin; do
    read -r pw ng as cpw cng cas lpw lng las < <(measure "$f" http "$PORT_PW" "$PORT_NGINX" "$PORT_ASIO" 3>>"$spreads")
    echo "| $f | $pw | $ng | $as | $(ratio "$pw" "$ng") | $(ratio "$pw" "$as") | $cpw / $cng / $cas | $(cpu_ratio "$cpw" "$cng") | $(cpu_ratio "$cpw" "$cas") | $lpw / $lng / $las |"
  done
  for f in 1k.bin 1m.bin; do  # HTTPS (TLS 1.3 on both sides)
    read -r pw ng cpw cng lpw lng < <(measure "$f" https "$PORT_PW_TLS" "$PORT_NGINX_TLS" 3>>"$spreads")
    echo "| $f (https) | $pw | $ng | n/a | $(ratio "$pw" "$ng") | n/a | $cpw / $cng / n/a | $(cpu_ratio "$cpw" "$cng") | n/a | $lpw / $lng / n/a |"
  done
} | tee "$OUT"
# 1m.bin with discard_load: the client's core no longer copies each body, so what bounds
# requests/s is the server's own work per request.
CLIENT=discard_client
{
  echo
  echo "1m.bin with apps/discard_load in wrk's place (64 connections; response bodies dropped in the kernel by recv(MSG_TRUNC), not copied):"
  echo
  echo "| file | pagewire req/s | nginx req/s | asio req/s | pagewire/nginx | pagewire/asio | CPU µs/req pagewire / nginx / asio | client's core µs/req pagewire / nginx / asio |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
  read -r pw ng as cpw cng cas lpw lng las < <(measure 1m.bin http "$PORT_PW" "$PORT_NGINX" "$PORT_ASIO" 3>>"$spreads")
  echo "| 1m.bin | $pw | $ng | $as | $(ratio "$pw" "$ng") | $(ratio "$pw" "$as") | $cpw / $cng / $cas | $lpw / $lng / $las |"
} | tee -a "$OUT"
# Measurements that failed: the table above is finished, with "n/a" where their figures would
# be meaningless; say which and why (each once), keep the numbers out of OUT, and fail.
if [[ -s $tmp/failed ]]; then
  {
    echo
    echo "server_compare: FAILED: these measurements are not valid:"
    awk '!seen[$0]++ { print "  " $0 }' "$tmp/failed"
    if [[ -s $tmp/failed.details ]]; then
      echo "the load generator's output for each:"
      cat "$tmp/failed.details"
    fi
  } >&2
  {
    echo "server comparison failed (see make bench's output):"
    awk '!seen[$0]++ { print "- " $0 }' "$tmp/failed"
  } >"$OUT"
  exit 1
fi
{
  echo
  echo "Medians of $ROUNDS runs of ${DURATION}s per server and file (wrk, then discard_load), servers"
  echo "taking turns; server on CPU $SERVER_CPU, the load generator on CPU $LOAD_CPU, $(nproc) CPUs, $(uname -r)."
  echo "CPU µs/req: the server's CPU time (all its threads and child processes, user and"
  echo "kernel, from /proc/*/task/*/schedstat) over the requests wrk completed; a server that"
  echo "saturates wrk's core cannot show its speed in requests/s, and shows it here."
  echo "wrk's core µs/req: busy time of CPU $LOAD_CPU (/proc/stat, in ${HZ} Hz ticks: user, nice,"
  echo "system, irq, softirq, steal) over the requests: wrk, and the kernel work the server leaves"
  echo "on that core."
  echo "Loopback and large files: wrk's own copy reads what a zero-copy server sends (page-cache"
  echo "pages, nginx and pagewire) from memory, while a copying server (Asio) hands it pages its"
  echo "write has just filled, still in cache. For files larger than the cache (64m.bin) that"
  echo "moves the cost of a cold read from the server's core to wrk's; a NIC would read them by DMA."
  echo "pagewire caps each socket's unsent bytes (TCP_NOTSENT_LOWAT, 16 KiB) and sends the rest"
  echo "from its own core; nginx and Asio leave it to the kernel, which sends part of a large body"
  echo "from wrk's core as wrk's ACKs arrive: that part is missing from their CPU µs/req and"
  echo "counted in wrk's core µs/req."
  echo "discard_load's table: the same CPU figures; its client's core µs/req is what is left of"
  echo "wrk's once the bodies are not copied (system calls, TCP receive work, ACKs)."
  echo "Spread (min-max req/s, pagewire nginx [asio]):"
  echo
  sed 's/^/    /' "$spreads"
} | tee -a "$OUT"
