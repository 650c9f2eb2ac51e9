#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/range.h>

namespace pagewire::http {
namespace {

// RFC 9110 §14.1.2: byte-range specs against a 10000-byte representation.
TEST(Range, SingleRanges) {
  auto r = evaluate_range("bytes=0-499", 10000);
  ASSERT_EQ(r.outcome, range_outcome::satisfiable);
  ASSERT_EQ(r.count, 1);
  EXPECT_EQ(r.items[0].first, 0u);
  EXPECT_EQ(r.items[0].length, 500u);
  r = evaluate_range("bytes=9500-", 10000);  // open range
  EXPECT_EQ(r.items[0].first, 9500u);
  EXPECT_EQ(r.items[0].length, 500u);
  r = evaluate_range("bytes=-500", 10000);  // suffix range
  EXPECT_EQ(r.items[0].first, 9500u);
  EXPECT_EQ(r.items[0].length, 500u);
  r = evaluate_range("bytes=9500-20000", 10000);  // last clamped
  EXPECT_EQ(r.items[0].length, 500u);
  r = evaluate_range("bytes=-20000", 10000);  // suffix longer than the file: the whole
  EXPECT_EQ(r.items[0].first, 0u);
  EXPECT_EQ(r.items[0].length, 10000u);
  r = evaluate_range("Bytes = 5-5", 10000);
  ASSERT_EQ(r.outcome, range_outcome::satisfiable);
  EXPECT_EQ(r.items[0].length, 1u);
}

TEST(Range, MultipleRanges) {
  const auto r = evaluate_range("bytes=0-0, 10-19 ,, -1", 10000);
  ASSERT_EQ(r.outcome, range_outcome::satisfiable);
  ASSERT_EQ(r.count, 3);
  EXPECT_EQ(r.items[1].first, 10u);
  EXPECT_EQ(r.items[2].first, 9999u);
}

// §14.2: an invalid Range field is ignored -> 200.
TEST(Range, MalformedIsIgnored) {
  for (auto f : {"", "bytes", "bytes=", "bytes=a-b", "bytes=5-1", "bytes=1-2-3", "items=0-1",
                 "bytes=0-1,x", "bytes=--1", "bytes=99999999999999999999-"}) {
    EXPECT_EQ(evaluate_range(f, 10000).outcome, range_outcome::ignore) << f;
  }
}

// §15.5.17: no satisfiable range -> 416.
TEST(Range, UnsatisfiableGives416) {
  EXPECT_EQ(evaluate_range("bytes=10000-", 10000).outcome, range_outcome::unsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=-0", 10000).outcome, range_outcome::unsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=0-", 0).outcome, range_outcome::unsatisfiable);
  EXPECT_EQ(evaluate_range("bytes=20000-30000, 10000-", 10000).outcome,
            range_outcome::unsatisfiable);
  // An unsatisfiable element next to a satisfiable one is dropped.
  const auto r = evaluate_range("bytes=20000-, 0-1", 10000);
  ASSERT_EQ(r.outcome, range_outcome::satisfiable);
  EXPECT_EQ(r.count, 1);
}

// Documented choice: overlapping/descending or more than 16 ranges -> the whole, 200.
TEST(Range, OverlappingOrTooManyServeTheWhole) {
  EXPECT_EQ(evaluate_range("bytes=0-10, 5-20", 10000).outcome, range_outcome::ignore);
  EXPECT_EQ(evaluate_range("bytes=0-10, 10-20", 10000).outcome, range_outcome::ignore);
  EXPECT_EQ(evaluate_range("bytes=100-200, 0-10", 10000).outcome, range_outcome::ignore);
  EXPECT_EQ(evaluate_range("bytes=0-, -10", 10000).outcome, range_outcome::ignore);
  std::string sixteen = "bytes=0-0", seventeen;
  for (int i = 1; i < 16; ++i)
    sixteen += "," + std::to_string(i * 10) + "-" + std::to_string(i * 10);
  seventeen = sixteen + ",500-500";
  EXPECT_EQ(evaluate_range(sixteen, 10000).count, 16);
  EXPECT_EQ(evaluate_range(seventeen, 10000).outcome, range_outcome::ignore);
}

}  // namespace
}  // namespace pagewire::http
