#!/usr/bin/env bash
# `make test`'s check of `make install`: installs into a temporary prefix with
# bazel/install.sh (a release build of //:libpagewire.so), builds
# tests/install/consumer.cc against that prefix with nothing but pkg-config, and
# runs it; before that, every installed header is compiled on its own against the prefix.
# Exit 0 and one line "install: ok" when all of that worked and the program printed "ok".
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT

if ! PREFIX="$prefix" bash bazel/install.sh >"$prefix/install.log" 2>&1; then
  cat "$prefix/install.log" >&2
  echo "install: bazel/install.sh failed" >&2
  exit 1
fi
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# Every installed header compiles on its own: nothing it includes is missing from the prefix.
cflags=$(pkg-config --cflags pagewire)
bad=0
while IFS= read -r header; do
  # shellcheck disable=SC2086  # cflags is a list of flags
  if ! echo "#include <$header>" |
    g++ $cflags -fsyntax-only -Wall -Wextra -Werror -x c++ - 2>"$prefix/header.log"; then
    echo "install: <$header> does not compile on its own:" >&2
    head -5 "$prefix/header.log" >&2
    bad=1
  fi
done < <(cd "$prefix/include" && find pagewire -name '*.h' | sort)
[ "$bad" -eq 0 ] || exit 1

# shellcheck disable=SC2046  # pkg-config's output is a list of flags
g++ -Wall -Wextra -Werror tests/install/consumer.cc \
  $(pkg-config --cflags --libs pagewire) -o "$prefix/consumer"
out=$("$prefix/consumer")
if [ "$out" != ok ]; then
  echo "install: the consumer printed '$out'" >&2
  exit 1
fi
echo "install: ok"
