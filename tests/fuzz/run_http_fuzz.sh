#!/usr/bin/env bash
# Builds tests/fuzz/http_fuzz.cc with clang++-14 and libFuzzer (outside Bazel) and runs
# it over the seed corpus for a bounded time.
#   tests/fuzz/run_http_fuzz.sh [SECONDS]   (default 60)
# Needs clang-14 with its libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
out="${FUZZ_OUT:-/tmp/pagewire-http-fuzz}"
mkdir -p "$out/include/pagewire/apps" "$out/corpus"
ln -sfn "$PWD/apps/http" "$out/include/pagewire/apps/http"
srcs=(apps/http/*.cc)
clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I"$out/include" \
  tests/fuzz/http_fuzz.cc "${srcs[@]}" -o "$out/http_fuzz"
cp -n tests/fuzz/corpus/http/* "$out/corpus/" 2>/dev/null || true
cd "$out"
./http_fuzz -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 \
  -dict="$OLDPWD/tests/fuzz/http.dict" corpus
