#pragma once

/// HTTP dates (RFC 9110 §5.6.7): IMF-fixdate formatting, parsing of IMF-fixdate and the
/// obsolete RFC 850 and asctime forms, and a per-thread Date header cache.
/// Free functions are pure and thread-safe; a date_cache belongs to one thread.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace pagewire::http {

/// "Sun, 06 Nov 1994 08:49:37 GMT" is always 29 bytes.
inline constexpr std::size_t kHttpDateSize = 29;

struct civil_time {
  int year, month, day;  // month 1..12, day 1..31
  int hour, minute, second;
  int weekday;  // 0 = Sunday
};

/// UTC broken-down time; seconds are clamped to [0, 9999-12-31T23:59:59].
civil_time to_civil(std::int64_t unix_seconds);

/// Writes the IMF-fixdate of `unix_seconds` into out[0..29).
void format_http_date(std::int64_t unix_seconds, std::span<char, kHttpDateSize> out);

/// Seconds since the epoch, or nullopt for anything that is not exactly one of the three
/// forms (a recipient ignores invalid dates, RFC 9110 §13.1.3). RFC 850's two-digit year
/// is the year ending in those digits that is at most 50 years after `now` (seconds since
/// the epoch) and the latest such, as §5.6.7 asks: "94" is 1994 and "37" 2037 in 2026.
std::optional<std::int64_t> parse_http_date(std::string_view s, std::int64_t now);

/// The Date header value for the current second, formatted at most once a second.
class date_cache {
 public:
  /// The value for `now_seconds`; the view is valid until the next call.
  std::string_view at(std::int64_t now_seconds);

 private:
  std::int64_t second_ = -1;
  char buf_[kHttpDateSize] = {};
};

/// The calling thread's date_cache at CLOCK_REALTIME_COARSE; the view is valid until the
/// calling thread calls this again.
std::string_view current_http_date();

/// Seconds since the epoch from CLOCK_REALTIME_COARSE (a vDSO read, no syscall).
std::int64_t coarse_now_seconds();

}  // namespace pagewire::http
