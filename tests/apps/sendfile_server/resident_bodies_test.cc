#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/apps/sendfile_server/resident_bodies.h>
#include <pagewire/fs/page_pool.h>

namespace pagewire::sendfile_server {
namespace {

class ResidentBodiesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char path[] = "/tmp/resident_bodies_testXXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, "0123456789", 10), 10);
    ::close(fd);
    path_ = path;
    std::error_code ec;
    a_ = fs::file::open(path, ec);
    b_ = fs::file::open(path, ec);  // the same path opened again: another file object
    ASSERT_TRUE(a_ && b_) << ec.message();
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  fs::slice text(const char* s) {
    fs::page_ref p = pool_.allocate();
    std::memcpy(p.data(), s, std::strlen(s));
    return fs::slice(std::move(p), 0, std::strlen(s));
  }

  static std::string bytes_of(const fs::chain& c) {
    std::string out;
    for (const fs::segment& s : c.segments()) {
      const fs::slice& m = std::get<fs::slice>(s);
      out.append(reinterpret_cast<const char*>(m.data()), m.size());
    }
    return out;
  }

  fs::page_pool pool_;
  std::string path_;
  std::shared_ptr<const fs::file> a_, b_;
};

TEST_F(ResidentBodiesTest, RememberedBodyIsSharedNotCopied) {
  resident_bodies r;
  const fs::slice pages[] = {text("abc"), text("defg")};
  r.remember(a_, 100, 7, pages);
  fs::chain out;
  ASSERT_TRUE(r.append(*a_, 100, 7, out));
  EXPECT_EQ(bytes_of(out), "abcdefg");
  EXPECT_EQ(std::get<fs::slice>(out.segments()[0]).data(), pages[0].data());
}

TEST_F(ResidentBodiesTest, OtherRangeOrOtherFileObjectMisses) {
  resident_bodies r;
  const fs::slice pages[] = {text("abc")};
  r.remember(a_, 0, 3, pages);
  fs::chain out;
  EXPECT_FALSE(r.append(*a_, 0, 2, out));
  EXPECT_FALSE(r.append(*a_, 1, 3, out));
  EXPECT_FALSE(r.append(*b_, 0, 3, out));  // a changed file comes as a new object
  EXPECT_TRUE(out.empty());
}

TEST_F(ResidentBodiesTest, ReplacingABodyReleasesThePagesItNoLongerHolds) {
  resident_bodies r;
  {
    const fs::slice pages[] = {text("a"), text("b"), text("c")};
    r.remember(a_, 0, 3, pages);
  }
  EXPECT_EQ(pool_.stats().pages_in_use, 3u);  // held by the memo alone
  {
    const fs::slice pages[] = {text("xy")};
    r.remember(a_, 0, 3, pages);  // same key, same slot: replaces
  }
  EXPECT_EQ(pool_.stats().pages_in_use, 1u);
  fs::chain out;
  ASSERT_TRUE(r.append(*a_, 0, 3, out));
  EXPECT_EQ(bytes_of(out), "xy");
}

TEST_F(ResidentBodiesTest, MoreThanMaxPagesIsNotRemembered) {
  resident_bodies r;
  std::vector<fs::slice> pages;
  for (std::size_t i = 0; i <= resident_bodies::kMaxPages; ++i)
    pages.push_back(text("p"));
  r.remember(a_, 0, pages.size(), pages);
  fs::chain out;
  EXPECT_FALSE(r.append(*a_, 0, pages.size(), out));
}

}  // namespace
}  // namespace pagewire::sendfile_server
