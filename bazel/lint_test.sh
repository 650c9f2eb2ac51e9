#!/usr/bin/env bash
# `make lint`, and one check of `make test`: every tracked C++ file is formatted as
# .clang-format says (clang-format-14), and the library's and the apps' sources are clean under
# .clang-tidy's checks (clang-tidy-14, warnings as errors). Exit 0 and one line "lint: ok";
# otherwise the findings and a non-zero status. LINT_JOBS sets the parallel clang-tidy runs
# (default: one per core).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! git ls-files -z '*.cc' '*.h' | xargs -0 clang-format-14 --dry-run -Werror; then
  echo "lint: files above are not formatted; run make format" >&2
  exit 1
fi

# Sources include <pagewire/...>: a folder where pagewire names this checkout.
inc=$(mktemp -d)
trap 'rm -rf "$inc"' EXIT
ln -s "$PWD" "$inc/pagewire"
# The defines are those of the Bazel build (bazel/BUILD, runtime/BUILD) outside release.
export LINT_FLAGS="-std=c++20 -I$inc -I$PWD -DPAGEWIRE_FAULT_INJECTION -DBOOST_ASIO_NO_DEPRECATED \
-DBOOST_ASIO_DISABLE_BOOST_COROUTINE"
# One file per run; a run's output is printed only when clang-tidy reports something.
# clang 14's static analyzer does not model C++20 coroutines: for each co_await on an Asio
# operation it reports a null dereference inside Asio's awaitable frame (a system header,
# where no NOLINT can go). Files with co_await are checked without that one check.
tidy_one() {
  local out checks=()
  grep -q 'co_await' "$1" && checks=(--checks=-clang-analyzer-core.NullDereference)
  # shellcheck disable=SC2086  # LINT_FLAGS is a list of flags
  if ! out=$(clang-tidy-14 --quiet "${checks[@]}" "$1" -- $LINT_FLAGS 2>&1); then
    printf '%s\n' "$out" | grep -v ' warnings\? generated\.$' >&2
    return 1
  fi
}
export -f tidy_one
if ! git ls-files -z 'runtime/*.cc' 'net/*.cc' 'fs/*.cc' 'filters/*.cc' 'apps/*.cc' |
  xargs -0 -n 1 -P "${LINT_JOBS:-$(nproc)}" bash -c 'tidy_one "$1"' _; then
  echo "lint: clang-tidy found the problems above" >&2
  exit 1
fi
echo "lint: ok"
