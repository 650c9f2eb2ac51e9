#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/fs/file_range.h>
#include <pagewire/fs/open_file_cache.h>

#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

class OpenFileCacheTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    root_ = testing::temp_path("root");
    outside_ = testing::temp_path("outside");
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((root_ + "/sub").c_str(), 0755), 0);
    ASSERT_TRUE(testing::write_file(root_ + "/a.txt", bytes("alpha")));
    ASSERT_TRUE(testing::write_file(root_ + "/b.txt", bytes("beta")));
    ASSERT_TRUE(testing::write_file(root_ + "/sub/c.txt", bytes("gamma")));
    ASSERT_TRUE(testing::write_file(outside_, bytes("secret")));
  }
  void TearDown() override {
    for (const char* n :
         {"/a.txt", "/b.txt", "/sub/c.txt", "/escape", "/proc_self", "/linkdir", "/linkfile"}) {
      ::unlink((root_ + n).c_str());
    }
    ::rmdir((root_ + "/sub").c_str());
    ::rmdir(root_.c_str());
    ::unlink(outside_.c_str());
  }
  static std::vector<char> bytes(const std::string& s) { return {s.begin(), s.end()}; }

  std::unique_ptr<open_file_cache> make(open_file_cache_options o = {}) {
    o.use_openat2 = GetParam();
    std::error_code ec;
    auto c = open_file_cache::create(root_.c_str(), o, ec);
    EXPECT_TRUE(c) << ec.message();
    return c;
  }

  std::string root_;
  std::string outside_;
};

TEST_P(OpenFileCacheTest, SecondOpenIsAHitReturningTheSameFile) {
  auto cache = make();
  std::error_code ec;
  auto a = cache->open("/a.txt", ec);
  ASSERT_TRUE(a) << ec.message();
  EXPECT_EQ(a->size(), 5u);
  EXPECT_TRUE(a->regular());
  auto again = cache->open("a.txt", ec);
  EXPECT_EQ(again, a);
  auto nested = cache->open("/sub/c.txt", ec);
  ASSERT_TRUE(nested) << ec.message();
  EXPECT_EQ(nested->size(), 5u);
  open_file_cache_stats s = cache->stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 2u);
}

// A FIFO under the root must not block the opener (no writer will ever come), and a
// regular file's descriptor must be blocking again (io_uring reads honour O_NONBLOCK).
TEST_P(OpenFileCacheTest, FifoOpensWithoutBlockingAndRegularFilesAreBlocking) {
  ASSERT_EQ(::mkfifo((root_ + "/fifo").c_str(), 0644), 0);
  auto cache = make();
  std::error_code ec;
  auto fifo = cache->open("/fifo", ec);
  ASSERT_TRUE(fifo) << ec.message();
  EXPECT_FALSE(fifo->regular());
  auto a = cache->open("/a.txt", ec);
  ASSERT_TRUE(a) << ec.message();
  EXPECT_EQ(::fcntl(a->fd(), F_GETFL) & O_NONBLOCK, 0);
  ::unlink((root_ + "/fifo").c_str());
}

TEST_P(OpenFileCacheTest, MissingFileReportsENOENT) {
  auto cache = make();
  std::error_code ec;
  EXPECT_FALSE(cache->open("/nope", ec));
  EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

TEST_P(OpenFileCacheTest, DotDotAndSymlinksCannotEscapeTheRoot) {
  auto cache = make();
  std::error_code ec;
  std::string rel_outside = "../" + outside_.substr(outside_.rfind('/') + 1);
  EXPECT_FALSE(cache->open(rel_outside, ec));
  EXPECT_TRUE(ec);
  EXPECT_FALSE(cache->open("sub/../../" + rel_outside.substr(3), ec));
  EXPECT_TRUE(ec);
  ASSERT_EQ(::symlink(outside_.c_str(), (root_ + "/escape").c_str()), 0);
  EXPECT_FALSE(cache->open("/escape", ec));
  EXPECT_TRUE(ec);
  ASSERT_EQ(::symlink("/proc/self/root", (root_ + "/proc_self").c_str()), 0);
  EXPECT_FALSE(cache->open("/proc_self" + outside_, ec));
  EXPECT_TRUE(ec);
}

TEST_P(OpenFileCacheTest, WalkRefusesASymlinkedDirectoryWithELOOP) {
  if (GetParam()) GTEST_SKIP() << "openat2 follows a symlink that stays beneath the root";
  ASSERT_EQ(::symlink("sub", (root_ + "/linkdir").c_str()), 0);
  ASSERT_EQ(::symlink("a.txt", (root_ + "/linkfile").c_str()), 0);
  auto cache = make();
  std::error_code ec;
  EXPECT_FALSE(cache->open("/linkdir/c.txt", ec));
  EXPECT_EQ(ec, std::errc::too_many_symbolic_link_levels) << ec.message();
  EXPECT_FALSE(cache->open("/linkfile", ec));
  EXPECT_EQ(ec, std::errc::too_many_symbolic_link_levels) << ec.message();
  EXPECT_FALSE(cache->open("/a.txt/x", ec));  // a file in the middle is still ENOTDIR
  EXPECT_EQ(ec, std::errc::not_a_directory) << ec.message();
}

TEST_P(OpenFileCacheTest, EntryIsTrustedUntilRevalidateAfterElapses) {
  open_file_cache_options o;
  o.revalidate_after = std::chrono::hours(1);
  auto cache = make(o);
  std::error_code ec;
  auto first = cache->open("/a.txt", ec);
  ASSERT_TRUE(testing::write_file(root_ + "/a.txt", bytes("alphabet-soup")));
  EXPECT_EQ(cache->open("/a.txt", ec), first);  // not yet re-checked
  cache->invalidate("/a.txt");                  // a version change noticed elsewhere
  auto second = cache->open("/a.txt", ec);
  ASSERT_TRUE(second);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->size(), 13u);
  EXPECT_EQ(cache->stats().replaced, 1u);
}

TEST_P(OpenFileCacheTest, RevalidationKeepsAnUnchangedFileAndReplacesAChangedOne) {
  open_file_cache_options o;
  o.revalidate_after = std::chrono::nanoseconds(0);  // every lookup re-checks
  auto cache = make(o);
  std::error_code ec;
  auto first = cache->open("/b.txt", ec);
  EXPECT_EQ(cache->open("/b.txt", ec), first);  // same inode, same version
  // Replace by rename: same path, another inode.
  std::string tmp = root_ + "/b.new";
  ASSERT_TRUE(testing::write_file(tmp, bytes("BETA!")));
  ASSERT_EQ(::rename(tmp.c_str(), (root_ + "/b.txt").c_str()), 0);
  auto second = cache->open("/b.txt", ec);
  ASSERT_TRUE(second);
  EXPECT_NE(second->ino(), first->ino());
  EXPECT_EQ(second->size(), 5u);
  open_file_cache_stats s = cache->stats();
  EXPECT_EQ(s.revalidations, 2u);
  EXPECT_EQ(s.replaced, 1u);
}

TEST_P(OpenFileCacheTest, BoundedAndClosesOnlyWhenNoRangeHoldsTheFile) {
  open_file_cache_options o;
  o.max_entries = 2;
  auto cache = make(o);
  std::error_code ec;
  file_range held(cache->open("/a.txt", ec), 0, 5);
  int fd = held.fd();
  ASSERT_GE(fd, 0);
  cache->open("/b.txt", ec);
  cache->open("/sub/c.txt", ec);  // evicts a.txt, the least recently used
  open_file_cache_stats s = cache->stats();
  EXPECT_EQ(s.entries, 2u);
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_NE(::fcntl(fd, F_GETFD), -1) << "closed while a range still uses it";
  char c = 0;
  EXPECT_EQ(::pread(fd, &c, 1, 0), 1);
  EXPECT_EQ(c, 'a');
  held = file_range();
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);
}

TEST_P(OpenFileCacheTest, ConcurrentOpensFromManyThreadsAgreeOnOneFile) {
  open_file_cache_options o;
  o.max_entries = 2;  // forces evictions while threads race
  o.revalidate_after = std::chrono::nanoseconds(0);
  auto cache = make(o);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const char* names[] = {"/a.txt", "/b.txt", "/sub/c.txt"};
      for (int i = 0; i < 200; ++i) {
        std::error_code ec;
        auto f = cache->open(names[(i + t) % 3], ec);
        if (!f || f->size() != ((i + t) % 3 == 1 ? 4u : 5u)) ++failures[t];
      }
    });
  }
  for (auto& th : threads)
    th.join();
  for (int t = 0; t < 4; ++t)
    EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_LE(cache->stats().entries, 2u);
}

INSTANTIATE_TEST_SUITE_P(Resolution, OpenFileCacheTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "openat2" : "walk"; });

}  // namespace
}  // namespace pagewire::fs
