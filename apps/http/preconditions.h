#pragma once

/// Conditional request evaluation for GET and HEAD (RFC 9110 §13.2.2) and If-Range
/// (RFC 9110 §13.1.5). Pure functions: any thread.

#include <cstdint>
#include <string_view>

#include <pagewire/apps/http/request_parser.h>

namespace pagewire::http {

/// The selected representation's validators.
struct validators {
  std::string_view etag;           // quoted strong ETag
  std::int64_t last_modified = 0;  // seconds since the epoch (Last-Modified)
};

enum class precondition : std::uint8_t {
  proceed,       // evaluate Range next, then 200 / 206
  not_modified,  // 304
  failed,        // 412
};

/// RFC 9110 §13.2.2 in order: If-Match (strong) else If-Unmodified-Since -> 412 when
/// false; then If-None-Match (weak) else If-Modified-Since -> 304 when false. An invalid
/// date is ignored. Only for GET/HEAD on an existing representation. `now` (seconds since
/// the epoch) places RFC 850 dates' two-digit years.
precondition evaluate_preconditions(const request& req, const validators& v, std::int64_t now);

/// Whether Range applies (RFC 9110 §13.1.5): no If-Range -> true; an entity-tag -> strong
/// match with the current ETag; an HTTP-date -> exact match with Last-Modified, and only
/// when Last-Modified is a strong validator (at least a second before `now`, §8.8.2.2).
bool if_range_allows(std::string_view if_range, const validators& v, std::int64_t now);

}  // namespace pagewire::http
