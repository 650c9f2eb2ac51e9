#pragma once

/// Request-target -> relative file path under the document root (RFC 9112 §3.2,
/// RFC 3986 §2.1). Pure function over caller-provided scratch: no allocation, any thread.
///
/// Rules: origin-form ("/a/b?q") or absolute-form ("http://host/a/b": its path is used; with
/// userinfo, "http://user@host/", it is rejected, RFC 9110 §4.2.4); anything else
/// (authority-form, "*", "../x", "a/b") is rejected. The query and fragment
/// are stripped, percent-encoding is decoded exactly once ("%252e" -> literal "%2e"),
/// and after decoding a NUL, a backslash, a control byte or a ".." segment rejects the
/// target; "." and empty segments are dropped, so "//etc/passwd" -> "etc/passwd", and a
/// last "." segment leaves a trailing slash ("/a/." is "/a/", RFC 3986 §5.2.4).
/// The result never starts with '/', never contains "..", and "" names the root.

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pagewire::http {

struct resolved_target {
  std::string_view path;  // relative, '/'-separated, no leading or trailing '/'
  bool trailing_slash;    // the decoded path ended in '/' or a "." segment, or was the root
};

/// Returns nullopt when the target must be answered with 400. `scratch` must hold at
/// least target.size() bytes (else nullopt); `path` points into it.
std::optional<resolved_target> resolve_target(std::string_view target, std::span<char> scratch);

/// The Location for a directory named without its trailing '/' (RFC 9110 §15.4.2; nginx and
/// Apache answer 301 too, so that relative links in the directory's index resolve inside
/// it): '/', the directory's path as resolve_target gave it (`resolved_path`, percent-encoded
/// as a name: only unreserved bytes and '/' stay), then '/', then the target's query (a byte
/// a URI may not hold, such as '"', '<' or '{', percent-encoded). Built from the normalized
/// path, never from the received one, so it always starts with exactly one '/': "//host" in a
/// target cannot become a Location that a browser reads as another host. Writes `out`
/// (reusing its capacity) and returns false for a target that is neither origin- nor
/// absolute-form.
bool directory_location(std::string_view target, std::string_view resolved_path, std::string& out);

/// Which bytes append_percent_encoded leaves as they are.
enum class uri_bytes {
  uri,   ///< all a URI's path and query may hold (RFC 3986 §3.3-3.4), '%' included: for
         ///< bytes already percent-encoded once (a received target)
  name,  ///< only the unreserved characters and '/': for raw bytes such as a file name
};

/// Appends `s` to `out`, every byte not in `keep` as %XX (uppercase hex, RFC 3986 §2.1).
void append_percent_encoded(std::string& out, std::string_view s, uri_bytes keep);

}  // namespace pagewire::http
