#include <gtest/gtest.h>

#include <pagewire/apps/http/etag.h>

namespace pagewire::http {
namespace {

TEST(Etag, StrongFromInodeSizeMtime) {
  const auto e = etag::make(0x1a2b, 1024, 0x17f0c3a9e1d2b000, content_coding::identity);
  EXPECT_EQ(e.view(), "\"1a2b-400-17f0c3a9e1d2b000\"");
  EXPECT_NE(etag::make(0x1a2b, 1025, 0x17f0c3a9e1d2b000, content_coding::identity).view(),
            e.view());
  EXPECT_NE(etag::make(0x1a2b, 1024, 0x17f0c3a9e1d2b001, content_coding::identity).view(),
            e.view());
  EXPECT_NE(etag::make(0x1a2c, 1024, 0x17f0c3a9e1d2b000, content_coding::identity).view(),
            e.view());
}

TEST(Etag, EachCodingHasItsOwnTag) {
  EXPECT_EQ(etag::make(1, 2, 3, content_coding::gzip).view(), "\"1-2-3-gz\"");
  EXPECT_EQ(etag::make(1, 2, 3, content_coding::zstd).view(), "\"1-2-3-zst\"");
  const auto big = etag::make(UINT64_MAX, UINT64_MAX, INT64_MAX, content_coding::zstd);
  EXPECT_EQ(big.view().size(), 1 + 16 + 1 + 16 + 1 + 16 + 4 + 1);
}

// RFC 9110 §8.8.3.2: the comparison table.
TEST(Etag, StrongAndWeakComparison) {
  EXPECT_FALSE(strong_match("W/\"1\"", "W/\"1\""));
  EXPECT_TRUE(weak_match("W/\"1\"", "W/\"1\""));
  EXPECT_FALSE(strong_match("W/\"1\"", "W/\"2\""));
  EXPECT_FALSE(weak_match("W/\"1\"", "W/\"2\""));
  EXPECT_FALSE(strong_match("W/\"1\"", "\"1\""));
  EXPECT_TRUE(weak_match("W/\"1\"", "\"1\""));
  EXPECT_TRUE(strong_match("\"1\"", "\"1\""));
  EXPECT_TRUE(weak_match("\"1\"", "\"1\""));
  EXPECT_FALSE(weak_match("1", "1"));
}

TEST(Etag, ListMatching) {
  EXPECT_TRUE(etag_list_matches("*", "\"a\"", true));
  EXPECT_TRUE(etag_list_matches("\"x\", W/\"a\"", "\"a\"", true));
  EXPECT_FALSE(etag_list_matches("\"x\", W/\"a\"", "\"a\"", false));
  EXPECT_TRUE(etag_list_matches("\"x,y\" ,, \"a\"", "\"a\"", false));
  EXPECT_FALSE(etag_list_matches("\"x,\"a\"", "\"a\"", true));
  EXPECT_FALSE(etag_list_matches("a, b", "\"a\"", true));
  EXPECT_FALSE(etag_list_matches("", "\"a\"", true));
}

}  // namespace
}  // namespace pagewire::http

namespace pagewire::http {
namespace {

TEST(Etag, HexDigitCountsAtTheEdges) {
  EXPECT_EQ(etag::make(0, 0, 0, content_coding::identity).view(), "\"0-0-0\"");
  EXPECT_EQ(etag::make(0xf, 0x10, 0xfff, content_coding::identity).view(), "\"f-10-fff\"");
  EXPECT_EQ(etag::make(UINT64_MAX, 1, -1, content_coding::identity).view(),
            "\"ffffffffffffffff-1-ffffffffffffffff\"");
}

}  // namespace
}  // namespace pagewire::http

namespace pagewire::http {
namespace {

// make() caches per thread: versions that differ in one input only, and a version seen
// again after others took its slot, still get their own tags.
TEST(Etag, CachedTagsFollowEveryInput) {
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(etag::make(1, 2, 3, content_coding::identity).view(), "\"1-2-3\"");
    EXPECT_EQ(etag::make(1, 2, 4, content_coding::identity).view(), "\"1-2-4\"");
    EXPECT_EQ(etag::make(17, 2, 3, content_coding::identity).view(), "\"11-2-3\"");
    EXPECT_EQ(etag::make(1, 18, 3, content_coding::identity).view(), "\"1-12-3\"");
    EXPECT_NE(etag::make(1, 2, 3, content_coding::gzip).view(),
              etag::make(1, 2, 3, content_coding::identity).view());
  }
}

}  // namespace
}  // namespace pagewire::http
