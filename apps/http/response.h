#pragma once

/// What to send for one request: status, header facts and the body plan. Produced by
/// plan_response() / plan_error(), turned into bytes by build_head(); the server then
/// sends the body as the plan says. Plain value type, owned by the connection; the
/// string_views point into static tables or the request (live as long as it does).

#include <cstdint>
#include <optional>
#include <string_view>

#include <pagewire/apps/http/coding.h>
#include <pagewire/apps/http/etag.h>
#include <pagewire/apps/http/multipart.h>
#include <pagewire/apps/http/range.h>
#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/http/status.h>

namespace pagewire::http {

enum class body_kind : std::uint8_t {
  none,       // 304: no content at all
  fixed,      // fixed_body (error text)
  file,       // bytes [offset, offset + length) of the file (or of the precompressed sibling)
  multipart,  // multipart->parts() then multipart->closing()
  compress,   // the whole identity file compressed on the fly with `coding`
};

/// Content-Range value: "bytes FIRST-LAST/SIZE", or "bytes */SIZE" when unsatisfied.
struct content_range {
  bool unsatisfied = false;
  std::uint64_t first = 0, last = 0, size = 0;
};

struct response {
  http::status status = status::ok;
  http_version version = http_version::http11;  // the request's; the status line is 1.1
  bool keep_alive = false;                      // false: "Connection: close", close after sending
  bool head_only = false;  // HEAD: send the head only; its fields describe GET's body
  body_kind body = body_kind::none;
  content_coding coding = content_coding::identity;  // Content-Encoding
  bool from_sibling = false;  // body_kind::file reads the precompressed sibling for coding
  /// Content-Length. For body_kind::compress it is unknown here: the server compresses,
  /// sets it and only then calls build_head() (Content-Length is always sent).
  std::uint64_t content_length = 0;
  std::uint64_t offset = 0, length = 0;  // body_kind::file
  std::string_view content_type;
  std::optional<http::etag> etag;
  std::optional<std::int64_t> last_modified;  // seconds
  bool accept_ranges = false;                 // "Accept-Ranges: bytes"
  bool vary_accept_encoding = false;
  bool allow = false;         // 405: "Allow: GET, HEAD"
  std::string_view location;  // 301: the Location field's value (empty: none)
  std::optional<http::content_range> range;
  std::string_view fixed_body;
  std::optional<multipart_plan> multipart;
};

}  // namespace pagewire::http
