#!/usr/bin/env bash
# `make install`: the library for builds that are not Bazel. Installs
#   PREFIX/lib/libpagewire.so, PREFIX/include/pagewire/LAYER/*.h and
#   PREFIX/lib/pkgconfig/pagewire.pc
# so that `pkg-config --cflags --libs pagewire` gives a compiler what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${PREFIX:-/usr/local}
BAZEL=${BAZEL:-bazel}

"$BAZEL" build --config=release //:libpagewire.so
bin=$("$BAZEL" info --config=release bazel-bin 2>/dev/null)

install -d "$prefix/lib/pkgconfig" "$prefix/include/pagewire"
install -m 0755 "$bin/libpagewire.so" "$prefix/lib/libpagewire.so"
for layer in runtime fs net filters; do
  [ -d "$layer" ] || continue
  while IFS= read -r header; do
    install -D -m 0644 "$header" "$prefix/include/pagewire/$header"
  done < <(git ls-files "$layer/*.h")
done

version=$(sed -n 's/.*kVersion = "\(.*\)";/\1/p' runtime/version.h)
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" bazel/pagewire.pc.in \
  > "$prefix/lib/pkgconfig/pagewire.pc"
echo "installed pagewire $version under $prefix"
