#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/http_date.h>

namespace pagewire::http {
namespace {

constexpr std::int64_t k1994 = 784111777;     // Sun, 06 Nov 1994 08:49:37 GMT
constexpr std::int64_t kNow = 1'764'547'200;  // Mon, 01 Dec 2025 00:00:00 GMT

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
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", kNow), k1994);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", kNow), k1994);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994", kNow), k1994);
  EXPECT_EQ(parse_http_date("Thursday, 01-Jan-37 00:00:00 GMT", kNow),
            parse_http_date("Thu, 01 Jan 2037 00:00:00 GMT", kNow));
}

// RFC 9110 §5.6.7: an RFC 850 year that would be more than 50 years ahead of now is the
// latest past year with those two digits; the window slides with the clock.
TEST(HttpDate, Rfc850TwoDigitYearsSlideWithNow) {
  const auto year_of = [](std::string_view yy, std::int64_t now) {
    const std::string s = "Thursday, 01-Jan-" + std::string(yy) + " 00:00:00 GMT";
    const auto t = parse_http_date(s, now);
    return t ? to_civil(*t).year : -1;
  };
  EXPECT_EQ(year_of("75", kNow), 2075);  // 2025 + 50: not more than 50 years ahead
  EXPECT_EQ(year_of("76", kNow), 1976);
  EXPECT_EQ(year_of("70", kNow), 2070);
  EXPECT_EQ(year_of("00", kNow), 2000);
  EXPECT_EQ(year_of("99", kNow), 1999);
  constexpr std::int64_t k2090 = 3'786'912'000;  // Sun, 01 Jan 2090
  EXPECT_EQ(year_of("30", k2090), 2130);
  EXPECT_EQ(year_of("41", k2090), 2041);
  EXPECT_EQ(year_of("95", k2090), 2095);
}

TEST(HttpDate, FormatThenParseRoundTrips) {
  for (std::int64_t t = 0; t < 4102444800; t += 86400 * 37 + 3607) {
    EXPECT_EQ(parse_http_date(format(t), kNow), t) << t;
  }
}

// RFC 9110 §13.1.3: invalid dates are ignored, so the parser must say nullopt.
TEST(HttpDate, RejectsInvalidDates) {
  for (auto s : {"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                 "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                 "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT",
                 "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun Nov 6 08:49:37 1994",
                 "Sun, 06-Nov-94 08:49:37 GMT", "1994-11-06T08:49:37Z"}) {
    EXPECT_FALSE(parse_http_date(s, kNow)) << s;
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
  const auto parsed = parse_http_date(current_http_date(), kNow);
  ASSERT_TRUE(parsed);
  EXPECT_LE(*parsed - now, 1);
  EXPECT_LE(now - *parsed, 1);
}

}  // namespace
}  // namespace pagewire::http
