#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/http_date.h>

namespace pagewire::http {
namespace {

constexpr std::int64_t k1994 = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT

std::string format(std::int64_t t) {
  char buf[kHttpDateSize];
  format_http_date(t, buf);
  return std::string(buf, kHttpDateSize);
}

// RFC 9110 §5.6.7: IMF-fixdate.
TEST(HttpDate, FormatsImfFixdate) {
  EXPECT_EQ(format(k1994), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");
  EXPECT_EQ(format(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
}

TEST(HttpDate, ParsesAllThreeForms) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), k1994);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), k1994);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), k1994);
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-37 00:00:00 GMT"),
            parse_http_date("Thu, 01 Jan 2037 00:00:00 GMT"));
}

TEST(HttpDate, FormatThenParseRoundTrips) {
  for (std::int64_t t = 0; t < 4102444800; t += 86400 * 37 + 3607) {
    EXPECT_EQ(parse_http_date(format(t)), t) << t;
  }
}

// RFC 9110 §13.1.3: invalid dates are ignored, so the parser must say nullopt.
TEST(HttpDate, RejectsInvalidDates) {
  for (auto s : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                 "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                 "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
                 "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun Nov 6 08:49:37 1994",
                 "Sun, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37Z"}) {
    EXPECT_FALSE(parse_http_date(s)) << s;
  }
}

TEST(HttpDate, CacheReformatsOnlyWhenTheSecondChanges) {
  date_cache c;
  const auto a = c.at(k1994);
  EXPECT_EQ(a, "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(c.at(k1994).data(), a.data());
  EXPECT_EQ(c.at(k1994 + 1), "Sun, 06 Nov 1994 08:49:38 GMT");
}

TEST(HttpDate, CurrentDateIsAValidHttpDate) {
  const auto now = coarse_now_seconds();
  const auto parsed = parse_http_date(current_http_date());
  ASSERT_TRUE(parsed);
  EXPECT_LE(*parsed - now, 1);
  EXPECT_LE(now - *parsed, 1);
}

}  // namespace
}  // namespace pagewire::http
