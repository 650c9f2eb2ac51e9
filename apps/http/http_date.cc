#include <algorithm>
#include <time.h>

#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/http_date.h>

namespace pagewire::http {
namespace {

constexpr std::string_view kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::string_view kLongDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                          "Thursday", "Friday", "Saturday"};
constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int days_in_month(int y, int m) {
  static constexpr int kDaysIn[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDaysIn[m - 1];
}

std::optional<int> digits(std::string_view s) {
  int v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::optional<int> month_index(std::string_view s) {
  for (int i = 0; i < 12; ++i)
    if (kMonths[i] == s) return i + 1;
  return std::nullopt;
}

bool is_day_name(std::string_view s, const std::string_view (&names)[7]) {
  return std::find(std::begin(names), std::end(names), s) != std::end(names);
}

// "HH:MM:SS"
bool parse_time(std::string_view s, int& h, int& mi, int& se) {
  if (s.size() != 8 || s[2] != ':' || s[5] != ':') return false;
  auto a = digits(s.substr(0, 2)), b = digits(s.substr(3, 2)), c = digits(s.substr(6, 2));
  if (!a || !b || !c || *a > 23 || *b > 59 || *c > 60) return false;
  h = *a, mi = *b, se = std::min(*c, 59);  // a leap second reads as :59
  return true;
}

std::optional<std::int64_t> assemble(int y, int mo, int d, int h, int mi, int se) {
  if (d < 1 || d > days_in_month(y, mo)) return std::nullopt;
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
std::optional<std::int64_t> parse_imf(std::string_view s) {
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s.substr(25) != " GMT" || !is_day_name(s.substr(0, 3), kDays)) {
    return std::nullopt;
  }
  auto d = digits(s.substr(5, 2));
  auto mo = month_index(s.substr(8, 3));
  auto y = digits(s.substr(12, 4));
  int h, mi, se;
  if (!d || !mo || !y || !parse_time(s.substr(17, 8), h, mi, se)) return std::nullopt;
  return assemble(*y, *mo, *d, h, mi, se);
}

// rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
std::optional<std::int64_t> parse_rfc850(std::string_view s, std::int64_t now) {
  const auto comma = s.find(", ");
  if (comma == std::string_view::npos || !is_day_name(s.substr(0, comma), kLongDays)) {
    return std::nullopt;
  }
  s.remove_prefix(comma + 2);
  if (s.size() != 22 || s[2] != '-' || s[6] != '-' || s[9] != ' ' || s.substr(18) != " GMT") {
    return std::nullopt;
  }
  auto d = digits(s.substr(0, 2));
  auto mo = month_index(s.substr(3, 3));
  auto yy = digits(s.substr(7, 2));
  int h, mi, se;
  if (!d || !mo || !yy || !parse_time(s.substr(10, 8), h, mi, se)) return std::nullopt;
  // RFC 9110 §5.6.7: a year more than 50 years ahead is the last one in the past with the
  // same two digits; taken by years, from the century of `now`.
  const int this_year = to_civil(now).year;
  int year = this_year - this_year % 100 + *yy;
  if (year > this_year + 50) {
    year -= 100;
  } else if (year + 100 <= this_year + 50) {
    year += 100;
  }
  return assemble(year, *mo, *d, h, mi, se);
}

// asctime-date: "Sun Nov  6 08:49:37 1994"
std::optional<std::int64_t> parse_asctime(std::string_view s) {
  if (s.size() != 24 || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' || s[19] != ' ' ||
      !is_day_name(s.substr(0, 3), kDays)) {
    return std::nullopt;
  }
  auto mo = month_index(s.substr(4, 3));
  auto d = s[8] == ' ' ? digits(s.substr(9, 1)) : digits(s.substr(8, 2));
  auto y = digits(s.substr(20, 4));
  int h, mi, se;
  if (!mo || !d || !y || !parse_time(s.substr(11, 8), h, mi, se)) return std::nullopt;
  return assemble(*y, *mo, *d, h, mi, se);
}

void put2(char* p, int v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

}  // namespace

civil_time to_civil(std::int64_t t) {
  t = std::clamp<std::int64_t>(t, 0, kMaxSeconds);
  const std::int64_t z0 = t / 86400;
  const int secs = static_cast<int>(t % 86400);
  const std::int64_t z = z0 + 719468;
  const std::int64_t era = z / 146097;
  const std::int64_t doe = z - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int y = static_cast<int>(yoe + era * 400 + (m <= 2));
  return civil_time{
      y, m, d, secs / 3600, secs / 60 % 60, secs % 60, static_cast<int>((z0 + 4) % 7)};
}

void format_http_date(std::int64_t unix_seconds, std::span<char, kHttpDateSize> out) {
  const civil_time c = to_civil(unix_seconds);
  char* p = out.data();
  std::copy_n(kDays[c.weekday].data(), 3, p);
  p[3] = ',';
  p[4] = ' ';
  put2(p + 5, c.day);
  p[7] = ' ';
  std::copy_n(kMonths[c.month - 1].data(), 3, p + 8);
  p[11] = ' ';
  put2(p + 12, c.year / 100);
  put2(p + 14, c.year % 100);
  p[16] = ' ';
  put2(p + 17, c.hour);
  p[19] = ':';
  put2(p + 20, c.minute);
  p[22] = ':';
  put2(p + 23, c.second);
  std::copy_n(" GMT", 4, p + 25);
}

std::optional<std::int64_t> parse_http_date(std::string_view s, std::int64_t now) {
  if (auto t = parse_imf(s)) return t;
  if (auto t = parse_asctime(s)) return t;
  return parse_rfc850(s, now);
}

std::string_view date_cache::at(std::int64_t now_seconds) {
  if (now_seconds != second_) {
    format_http_date(now_seconds, std::span<char, kHttpDateSize>(buf_, kHttpDateSize));
    second_ = now_seconds;
  }
  return std::string_view(buf_, kHttpDateSize);
}

std::int64_t coarse_now_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec;
}

std::string_view current_http_date() {
  thread_local date_cache cache;
  return cache.at(coarse_now_seconds());
}

}  // namespace pagewire::http
