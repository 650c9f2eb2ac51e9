#!/usr/bin/env bash
# Builds one libFuzzer target with clang++-14 (outside Bazel) and runs it over its seed
# corpus for a bounded time.
#   tests/fuzz/run_fuzz.sh TARGET [SECONDS]   (default 60)
# TARGET names tests/fuzz/TARGET.build (bash), which sets:
#   srcs=(...)     the pagewire sources it links, relative to the repository root
#   libs=(...)     extra linker flags (-lz ...), optional
#   max_len=N      libFuzzer's -max_len, optional (default 4096)
#   main=FILE      the fuzz target's source, optional (default tests/fuzz/TARGET_fuzz.cc)
#   cflags=(...)   extra compiler flags (-DNAME=1 ...), optional
#   dict=FILE      libFuzzer's dictionary, optional (default tests/fuzz/TARGET.dict if present)
# and tests/fuzz/corpus/TARGET/ seeds the corpus when present. Several targets may share a
# source: a .build may `source` another one's and set main and cflags.
# Needs clang-14 with its libFuzzer runtime (Debian: clang-14, libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${1:?usage: run_fuzz.sh TARGET [SECONDS]}"
seconds="${2:-60}"
build="tests/fuzz/$target.build"
[[ -f "$build" ]] || { echo "run_fuzz.sh: no $build" >&2; exit 2; }
srcs=() libs=() max_len=4096 main="tests/fuzz/${target}_fuzz.cc" cflags=() dict=""
[[ -f "tests/fuzz/$target.dict" ]] && dict="tests/fuzz/$target.dict"
# shellcheck source=/dev/null
source "$build"
out="${FUZZ_OUT:-/tmp/pagewire-fuzz}/$target"
mkdir -p "$out/include" "$out/corpus"
ln -sfn "$PWD" "$out/include/pagewire"  # <pagewire/fs/chain.h> is fs/chain.h
clang++-14 -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined -I"$out/include" "${cflags[@]}" \
  "$main" "${srcs[@]}" "${libs[@]}" -o "$out/${target}_fuzz"
if [[ -d "tests/fuzz/corpus/$target" ]]; then
  cp -n "tests/fuzz/corpus/$target"/* "$out/corpus/" 2>/dev/null || true
fi
dict_flag=()
[[ -n "$dict" ]] && dict_flag=(-dict="$PWD/$dict")
cd "$out"
echo "== fuzz $target (${seconds}s)"
"./${target}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 \
  "${dict_flag[@]}" corpus
