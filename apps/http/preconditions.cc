#include <pagewire/apps/http/etag.h>
#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/http/preconditions.h>

namespace pagewire::http {

precondition evaluate_preconditions(const request& req, const validators& v, std::int64_t now) {
  // Step 1 / 2: If-Match, else If-Unmodified-Since.
  if (!req.if_match.empty()) {
    if (!etag_list_matches(req.if_match, v.etag, /*weak=*/false)) return precondition::failed;
  } else if (!req.if_unmodified_since.empty()) {
    if (auto t = parse_http_date(req.if_unmodified_since, now); t && v.last_modified > *t) {
      return precondition::failed;
    }
  }
  // Step 3 / 4: If-None-Match (wins), else If-Modified-Since.
  if (!req.if_none_match.empty()) {
    if (etag_list_matches(req.if_none_match, v.etag, /*weak=*/true)) {
      return precondition::not_modified;
    }
  } else if (!req.if_modified_since.empty()) {
    if (auto t = parse_http_date(req.if_modified_since, now); t && v.last_modified <= *t) {
      return precondition::not_modified;
    }
  }
  return precondition::proceed;
}

bool if_range_allows(std::string_view if_range, const validators& v, std::int64_t now) {
  if (if_range.empty()) return true;
  if (if_range.front() == '"' || if_range.starts_with("W/")) {
    return strong_match(if_range, v.etag);
  }
  const auto t = parse_http_date(if_range, now);
  return t && *t == v.last_modified && v.last_modified + 1 <= now;
}

}  // namespace pagewire::http
