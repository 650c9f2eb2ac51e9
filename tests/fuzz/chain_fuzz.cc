// libFuzzer target for fs::chain: the fuzz input chooses a sequence of operations (append and
// prepend of slices and file ranges, append(chain&&), split, consume, clear, reserve, copies and
// moves) that tests/fs/chain_model.h applies to three chains and their models, checking every
// chain against its model after each one; the interpreter is the one chain_model_test uses.
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh chain` with clang++-14; its seeds (corpus/chain/,
// inputs libFuzzer found) run in every `make test` as //tests/fuzz:chain_corpus_test.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "../fs/chain_model.h"

namespace {

using pagewire::fs::testing::chain_interpreter;
using pagewire::fs::testing::chain_model_fixture;

// Choices read from the input, little-endian, as many bytes as the bound needs; zeros once it
// runs out (and exhausted() says so).
class input_pick {
 public:
  input_pick(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint64_t operator()(std::uint64_t bound) {
    std::uint64_t v = 0;
    for (std::uint64_t span = bound - 1, shift = 0; span > 0; span >>= 8, shift += 8) {
      if (at_ < size_) {
        v |= std::uint64_t{data_[at_++]} << shift;
      } else {
        exhausted_ = true;
      }
    }
    return v % bound;
  }
  bool exhausted() const { return exhausted_ || at_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
  bool exhausted_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // Pages, static memory and files are set up once; every input starts from empty chains and
  // must hand every reference back (finish()).
  static chain_model_fixture* fx = new chain_model_fixture();
  if (!fx->error.empty()) {
    std::fprintf(stderr, "chain_fuzz: %s\n", fx->error.c_str());
    std::abort();
  }
  input_pick pick(data, size);
  chain_interpreter it(*fx);
  while (!pick.exhausted() && it.step(pick)) {
  }
  it.finish();
  if (!it.ok()) {
    std::fprintf(stderr, "chain_fuzz: %s\nlast operations:\n%s", it.failure().c_str(),
                 it.recent_ops().c_str());
    std::abort();
  }
  return 0;
}
