#pragma once

/// Decides what to send for a parsed request and the file it names: status, header facts
/// and the body plan (RFC 9110 §9.3.1-§9.3.2, §12.5.3, §13.2.2, §14). Pure: no I/O; the
/// caller passes what it learned from stat (and from its precompressed siblings).
/// Any thread; the result holds views into the request and static tables.

#include <cstdint>
#include <span>
#include <string_view>

#include <pagewire/apps/http/coding.h>
#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/http/response.h>

namespace pagewire::http {

struct file_stat {
  bool exists = false;
  bool is_regular = false;  // directories and specials -> 404
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t inode = 0;
};

/// A precompressed sibling ("file.gz", "file.zst") that exists and is not older than the
/// file; the caller checks both before listing it.
struct precompressed {
  content_coding coding;
  file_stat stat;
};

struct resource {
  std::string_view path;  // resolved relative path; its extension picks Content-Type
  file_stat stat;         // after the caller's index.html fallback for directories
  std::span<const precompressed> siblings;
};

struct plan_options {
  std::span<const content_coding> compress;   // --compress, in the server's preference order
  std::uint64_t min_compress_size = 1024;     // on-the-fly compression only above 1 KiB...
  std::uint64_t max_compress_size = 8 << 20;  // ...and up to this (bounded memory and time)
  /// Compressing this response on the fly failed (an exhausted page pool): such codings
  /// still count for Vary but are not chosen; a request that accepts nothing else gets 503.
  bool on_the_fly_unavailable = false;
  // Seconds, not after the Date sent: Last-Modified is capped to it (RFC 9110 §8.8.2.1),
  // and If-Range's strong-date rule reads it.
  std::int64_t now = 0;
  std::uint64_t boundary_seed = 0;  // multipart boundary, e.g. a per-thread counter
};

/// The response for `req` on `res`:
/// - a method other than GET/HEAD -> method_refusal(): 405 with "Allow: GET, HEAD" for a
///   method the server knows, 501 for one it does not;
/// - missing or not a regular file -> 404;
/// - Accept-Encoding over the codings this resource can take (a fresh sibling, or on the
///   fly for a compressible type of min..max size), only those in options.compress; on a
///   tie in the client's weights a sibling wins over compressing on the fly;
///   nothing acceptable -> 406 (503 when only an on-the-fly coding the server cannot
///   produce now is). A GET whose Range will be honoured (a valid bytes range set, and an
///   If-Range that holds for identity) gets identity when acceptable: Range applies to
///   identity only. A Range that will not be (HEAD, malformed, If-Range false) changes
///   nothing;
/// - preconditions in RFC 9110 §13.2.2 order -> 412 / 304;
/// - GET with Range (and If-Range true) on identity -> 206 single part, 206 multipart,
///   or 416; malformed, overlapping or > 16 ranges -> 200 whole;
/// - else 200. HEAD gets GET's fields with head_only set.
response plan_response(const request& req, const resource& res, const plan_options& opts);

/// The answer to a method that is not GET or HEAD: 405 (with Allow) for method::other, 501
/// for method::unknown (RFC 9110 §9.1, §15.5.6, §15.6.2).
status method_refusal(method m);

/// An error response with a small fixed text body ("404 Not Found\n").
/// `keep_alive` false adds "Connection: close" (parser errors must close).
response plan_error(status s, http_version version, bool head_only, bool keep_alive);

/// 301 Moved Permanently to `location` (which must outlive the response), with the fixed
/// body "301 Moved Permanently\n"; keep-alive as the request asked.
response plan_redirect(std::string_view location, http_version version, bool head_only,
                       bool keep_alive);

/// The fixed body plan_error() uses for `s`.
std::string_view error_body(status s);

}  // namespace pagewire::http
