#include <cstring>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file_range.h>

#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

constexpr std::uint64_t k4G = std::uint64_t{1} << 32;

// A 5 GiB sparse file with markers written past 2^32.
class SparseFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::temp_path("sparse");
    int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    if (::ftruncate(fd, static_cast<off_t>(5 * k4G / 4)) != 0) {
      ::close(fd);
      GTEST_SKIP() << "no sparse 5 GiB file here";
    }
    ASSERT_EQ(::pwrite(fd, "ABOVE4G", 7, static_cast<off_t>(k4G + 100)), 7);
    ASSERT_EQ(::pwrite(fd, "BELOW", 5, static_cast<off_t>(k4G - 5)), 5);
    ::close(fd);
    std::error_code ec;
    file_ = file::open(path_.c_str(), ec);
    ASSERT_TRUE(file_) << ec.message();
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  std::string read(const file_range& r) {
    auto v = testing::pread_all(r.fd(), r.offset(), static_cast<std::size_t>(r.size()));
    return std::string(v.begin(), v.end());
  }

  std::string path_;
  std::shared_ptr<const file> file_;
};

TEST_F(SparseFileTest, OffsetsPast4GiBAreKeptExactly) {
  EXPECT_EQ(file_->size(), 5 * k4G / 4);
  file_range r(file_, k4G + 100, 7);
  EXPECT_EQ(r.offset(), k4G + 100);
  EXPECT_EQ(read(r), "ABOVE4G");
}

TEST_F(SparseFileTest, SplitAndTrimAcrossThe4GiBBoundary) {
  file_range r(file_, k4G - 5, 112);  // "BELOW" + zeros + "ABOVE4G"
  file_range front = r.split(5);
  EXPECT_EQ(read(front), "BELOW");
  EXPECT_EQ(r.offset(), k4G);
  r.trim_front(100);
  EXPECT_EQ(r.size(), 7u);
  EXPECT_EQ(read(r), "ABOVE4G");
  file_range mid = file_range(file_, k4G - 5, 112).share(105, 3);
  EXPECT_EQ(read(mid), "ABO");
}

TEST_F(SparseFileTest, ChainOfTheWholeFileSplitsAndConsumesPast4GiB) {
  chain c;
  c.append(file_range(file_, 0, k4G));
  c.append(file_range(file_, k4G, file_->size() - k4G));  // merges: contiguous, same file
  EXPECT_EQ(c.segment_count(), 1u);
  EXPECT_EQ(c.size(), 5 * k4G / 4);
  chain front = c.split(k4G + 100);
  EXPECT_EQ(front.size(), k4G + 100);
  const file_range& rest = std::get<file_range>(c.front());
  EXPECT_EQ(rest.offset(), k4G + 100);
  EXPECT_EQ(read(rest.share(0, 7)), "ABOVE4G");
  c.consume(k4G / 8);
  EXPECT_EQ(std::get<file_range>(c.front()).offset(), k4G + 100 + k4G / 8);
  EXPECT_EQ(c.size(), 5 * k4G / 4 - k4G - 100 - k4G / 8);
}

TEST(FileRange, AdjacencyNeedsTheSameFile) {
  std::string p = testing::temp_path("adj");
  ASSERT_TRUE(testing::write_file(p, testing::random_bytes(100, 1)));
  std::error_code ec;
  auto a = file::open(p.c_str(), ec);
  auto b = file::open(p.c_str(), ec);
  ASSERT_TRUE(a && b);
  file_range r(a, 0, 10);
  EXPECT_TRUE(r.adjacent(file_range(a, 10, 5)));
  EXPECT_FALSE(r.adjacent(file_range(b, 10, 5)));  // another open file description
  EXPECT_FALSE(r.adjacent(file_range(a, 11, 5)));
  ::unlink(p.c_str());
}

TEST(FileRange, HoldsTheDescriptorOpenUntilTheLastCopyGoes) {
  std::string p = testing::temp_path("hold");
  ASSERT_TRUE(testing::write_file(p, testing::random_bytes(100, 1)));
  std::error_code ec;
  auto f = file::open(p.c_str(), ec);
  ASSERT_TRUE(f);
  int fd = f->fd();
  file_range r(std::move(f), 0, 100);
  file_range copy = r;
  r = file_range();
  EXPECT_NE(::fcntl(fd, F_GETFD), -1);
  copy = file_range();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
  ::unlink(p.c_str());
}

}  // namespace
}  // namespace pagewire::fs
