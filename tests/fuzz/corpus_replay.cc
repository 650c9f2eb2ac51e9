// A libFuzzer target's seed corpus as GoogleTest cases, built by Bazel with the project's
// compiler and flags (and run under the sanitizer configs like every test): one case per file
// of the corpus folder given as the first argument, each calling LLVMFuzzerTestOneInput once
// with the file's bytes. A harness that aborts on a broken invariant (fuzz_check.h) ends the
// binary, which `make test` counts as a failure. So every harness keeps building, and its
// oracle keeps agreeing with the code on every seed, between runs of `make fuzz` (which
// explores beyond the seeds with libFuzzer and clang).
//
//   TARGET_corpus_test tests/fuzz/corpus/TARGET

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

std::vector<std::uint8_t> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The file name as a test name: letters, digits and '_' only.
std::string case_name(const std::filesystem::path& p) {
  std::string s = p.filename().string();
  std::replace_if(
      s.begin(), s.end(), [](unsigned char c) { return !std::isalnum(c); }, '_');
  return s;
}

class replay : public testing::Test {
 public:
  explicit replay(std::filesystem::path file) : file_(std::move(file)) {}
  void TestBody() override {
    const std::vector<std::uint8_t> bytes = read_file(file_);
    ASSERT_FALSE(bytes.empty()) << file_ << ": empty or unreadable";
    EXPECT_EQ(LLVMFuzzerTestOneInput(bytes.data(), bytes.size()), 0);
  }

 private:
  std::filesystem::path file_;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  if (files.empty()) {
    std::fprintf(stderr, "%s: no seed files\n", dir.c_str());
    return 2;
  }
  std::sort(files.begin(), files.end());  // the same order in every run
  const std::string suite = "Corpus_" + dir.filename().string();
  for (const auto& f : files) {
    testing::RegisterTest(suite.c_str(), case_name(f).c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [f]() -> testing::Test* { return new replay(f); });
  }
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  return RUN_ALL_TESTS();
}
