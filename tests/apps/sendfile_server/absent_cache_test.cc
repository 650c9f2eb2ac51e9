#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/sendfile_server/absent_cache.h>

namespace pagewire::sendfile_server {
namespace {

using namespace std::chrono_literals;
using clock = absent_cache::clock;

TEST(AbsentCache, UnknownPathIsNotAbsent) {
  absent_cache c(1s);
  EXPECT_FALSE(c.known_absent("a.txt.gz", clock::now()));
}

TEST(AbsentCache, FailedLookupIsRememberedUntilTtlPasses) {
  absent_cache c(1s);
  const auto t0 = clock::time_point{} + 100s;
  c.note_absent("a.txt.gz", t0);
  EXPECT_TRUE(c.known_absent("a.txt.gz", t0));
  EXPECT_TRUE(c.known_absent("a.txt.gz", t0 + 999ms));
  EXPECT_FALSE(c.known_absent("a.txt.gz", t0 + 1s));  // revalidate: ask the filesystem
  EXPECT_FALSE(c.known_absent("a.txt.zst", t0));
  EXPECT_FALSE(c.known_absent("a.txt", t0));
}

TEST(AbsentCache, ANewFailureRestartsTheTtl) {
  absent_cache c(1s);
  const auto t0 = clock::time_point{} + 100s;
  c.note_absent("x.gz", t0);
  c.note_absent("x.gz", t0 + 2s);
  EXPECT_TRUE(c.known_absent("x.gz", t0 + 2500ms));
  EXPECT_EQ(c.size(), 1u);
}

TEST(AbsentCache, ZeroTtlRemembersNothing) {
  absent_cache c(0s);
  const auto t0 = clock::time_point{} + 100s;
  c.note_absent("x.gz", t0);
  EXPECT_FALSE(c.known_absent("x.gz", t0));
}

TEST(AbsentCache, StaysWithinItsBoundByStartingOver) {
  absent_cache c(1s, 3);
  const auto t0 = clock::time_point{} + 100s;
  for (int i = 0; i < 3; ++i)
    c.note_absent("f" + std::to_string(i), t0);
  EXPECT_EQ(c.size(), 3u);
  c.note_absent("f3", t0);  // full: dropped, then f3 alone
  EXPECT_EQ(c.size(), 1u);
  EXPECT_TRUE(c.known_absent("f3", t0));
  EXPECT_FALSE(c.known_absent("f0", t0));
}

}  // namespace
}  // namespace pagewire::sendfile_server
