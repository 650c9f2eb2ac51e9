#include <gtest/gtest.h>

#include <pagewire/apps/http/preconditions.h>

namespace pagewire::http {
namespace {

constexpr std::int64_t kMtime = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
const validators kV{"\"tag\"", kMtime};
constexpr std::int64_t kNow = 1'764'547'200;  // 2025-12-01: places RFC 850 two-digit years

request with(std::string_view inm, std::string_view ims, std::string_view im = {},
             std::string_view ius = {}) {
  request r;
  r.method = method::get;
  r.if_none_match = inm;
  r.if_modified_since = ims;
  r.if_match = im;
  r.if_unmodified_since = ius;
  return r;
}

// RFC 9110 §13.2.2 steps 3-4: If-None-Match (weak) -> 304; it wins over If-Modified-Since.
TEST(Preconditions, IfNoneMatchWeakComparisonGives304) {
  EXPECT_EQ(evaluate_preconditions(with("W/\"tag\"", {}), kV, kNow), precondition::not_modified);
  EXPECT_EQ(evaluate_preconditions(with("\"a\", \"tag\"", {}), kV, kNow),
            precondition::not_modified);
  EXPECT_EQ(evaluate_preconditions(with("*", {}), kV, kNow), precondition::not_modified);
  EXPECT_EQ(evaluate_preconditions(with("\"other\"", {}), kV, kNow), precondition::proceed);
}

TEST(Preconditions, IfNoneMatchWinsOverIfModifiedSince) {
  // The date says "not modified" but the tag differs: If-Modified-Since is not looked at.
  EXPECT_EQ(evaluate_preconditions(with("\"other\"", "Sun, 06 Nov 1994 08:49:37 GMT"), kV, kNow),
            precondition::proceed);
}

TEST(Preconditions, IfModifiedSince) {
  EXPECT_EQ(evaluate_preconditions(with({}, "Sun, 06 Nov 1994 08:49:37 GMT"), kV, kNow),
            precondition::not_modified);
  EXPECT_EQ(evaluate_preconditions(with({}, "Sunday, 06-Nov-94 08:49:38 GMT"), kV, kNow),
            precondition::not_modified);
  EXPECT_EQ(evaluate_preconditions(with({}, "Sun Nov  6 08:49:36 1994"), kV, kNow),
            precondition::proceed);
  EXPECT_EQ(evaluate_preconditions(with({}, "not a date"), kV, kNow), precondition::proceed);
}

// Steps 1-2: If-Match (strong) and If-Unmodified-Since -> 412, before 304.
TEST(Preconditions, IfMatchAndIfUnmodifiedSinceGive412) {
  EXPECT_EQ(evaluate_preconditions(with({}, {}, "\"other\""), kV, kNow), precondition::failed);
  EXPECT_EQ(evaluate_preconditions(with({}, {}, "W/\"tag\""), kV, kNow), precondition::failed);
  EXPECT_EQ(evaluate_preconditions(with({}, {}, "\"tag\""), kV, kNow), precondition::proceed);
  EXPECT_EQ(evaluate_preconditions(with({}, {}, "*"), kV, kNow), precondition::proceed);
  EXPECT_EQ(evaluate_preconditions(with({}, {}, {}, "Sun, 06 Nov 1994 08:49:36 GMT"), kV, kNow),
            precondition::failed);
  EXPECT_EQ(evaluate_preconditions(with({}, {}, {}, "Sun, 06 Nov 1994 08:49:37 GMT"), kV, kNow),
            precondition::proceed);
  // If-Match present: If-Unmodified-Since is not evaluated.
  EXPECT_EQ(
      evaluate_preconditions(with({}, {}, "\"tag\"", "Sun, 06 Nov 1994 08:49:36 GMT"), kV, kNow),
      precondition::proceed);
  // 412 is decided before 304.
  EXPECT_EQ(evaluate_preconditions(with("\"tag\"", {}, "\"other\""), kV, kNow),
            precondition::failed);
}

// RFC 9110 §13.1.5: If-Range.
TEST(Preconditions, IfRange) {
  const std::int64_t now = kMtime + 100;
  EXPECT_TRUE(if_range_allows({}, kV, now));
  EXPECT_TRUE(if_range_allows("\"tag\"", kV, now));
  EXPECT_FALSE(if_range_allows("W/\"tag\"", kV, now));
  EXPECT_FALSE(if_range_allows("\"old\"", kV, now));
  EXPECT_TRUE(if_range_allows("Sun, 06 Nov 1994 08:49:37 GMT", kV, now));
  EXPECT_FALSE(if_range_allows("Sun, 06 Nov 1994 08:49:38 GMT", kV, now));
  EXPECT_FALSE(if_range_allows("Sun, 06 Nov 1994 08:49:37 GMT", kV, kMtime));  // weak date
  EXPECT_FALSE(if_range_allows("garbage", kV, now));
}

}  // namespace
}  // namespace pagewire::http
