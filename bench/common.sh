# Sourced by the server benchmark scripts (server_compare.sh, server_profile.sh).
#
# require_demo_files SCRIPT ROOT FILE...
#   Exits with a one-line error naming SCRIPT when a FILE is missing under ROOT.
# bench_tmp NAME
#   Sets `tmp` (a fresh /tmp/pw_NAME.XXXXXX) and `pids` (empty); on exit every pid the script
#   added to `pids` is killed and waited for, and `tmp` is removed.

require_demo_files() {
  local name=$1 root=$2 f
  shift 2
  for f in "$@"; do
    [[ -f "$root/$f" ]] || { echo "$name: missing $root/$f" >&2; exit 1; }
  done
}

bench_tmp() {
  tmp=$(mktemp -d "/tmp/pw_$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
