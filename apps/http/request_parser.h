#pragma once

/// Incremental HTTP/1.1 and HTTP/1.0 request parser (RFC 9112 §2-§3, §6).
///
/// Storage: the parser owns a bounded arena (allocated once, reused across requests).
/// Head bytes are copied into it as they arrive, so the caller may recycle each input
/// span (a provided-buffer-ring chunk) as soon as feed() returns. Every string_view in
/// the parsed `request` points into that arena and stays valid until reset() or the
/// parser's destruction. A request body announced by Content-Length is counted and
/// discarded (a static server has no use for it), never stored.
///
/// Threading: one parser per connection; not thread-safe. Errors are not exceptions:
/// feed() reports parse_state::error and error_status() says which response to send;
/// after an error the connection must be closed (its framing can no longer be trusted).

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include <pagewire/apps/http/status.h>

namespace pagewire::http {

/// The request method (case-sensitive, RFC 9110 §9.1): GET and HEAD are served; `other` is a
/// method of RFC 9110 §9.3 or PATCH, which the server knows and does not allow (405 with
/// Allow); `unknown` is any other token (501, §15.6.2).
enum class method : std::uint8_t { get, head, other, unknown };
enum class http_version : std::uint8_t { http10, http11 };

struct header_field {
  std::string_view name;
  std::string_view value;  // OWS-trimmed
};

/// One parsed request head. Views point into the parser's arena (see above).
/// List-valued fields received on several lines are joined with ", " (RFC 9110 §5.3).
/// Singleton fields received more than once are dropped as invalid (If-Modified-Since,
/// If-Unmodified-Since: RFC 9110 §13.1.3/§13.1.4; Range, If-Range: Range is ignored).
struct request {
  http::method method = method::other;
  std::string_view method_name;
  std::string_view target;  // raw request-target; decode with resolve_target()
  http_version version = http_version::http11;
  bool keep_alive = false;        // after Connection and the version default (RFC 9112 §9.3)
  std::string_view request_line;  // without CRLF, for the access log
  std::string_view host;
  std::string_view range;
  std::string_view if_range;
  std::string_view if_match;
  std::string_view if_none_match;
  std::string_view if_modified_since;
  std::string_view if_unmodified_since;
  std::optional<std::string_view> accept_encoding;  // absent differs from empty
  std::string_view user_agent;
  std::string_view referer;
  std::uint64_t content_length = 0;      // body bytes the parser discarded
  std::span<const header_field> fields;  // every field line, in order
};

struct parser_limits {
  std::size_t max_head_bytes = 16 * 1024;  // request line + fields + CRLFs (431 / 414)
  std::size_t max_fields = 100;            // field lines (431)
  std::uint64_t max_body_bytes = 1 << 20;  // Content-Length we agree to discard (413)
};

enum class parse_state : std::uint8_t { need_more, done, error };

struct parse_result {
  parse_state state;
  std::size_t consumed;  // bytes of the input taken; the rest belongs to the next request
};

class request_parser {
 public:
  explicit request_parser(parser_limits limits = {});

  /// Feeds bytes; may be called with any split of the stream, including one byte at a
  /// time. Returns done once the head (and any Content-Length body) is complete, with
  /// `consumed` bytes taken from `in`; the caller keeps in[consumed..] for the next
  /// request (pipelining) and calls reset() before feeding them. After done or error,
  /// feed() consumes nothing until reset(). On error, `consumed` depends on how the
  /// input was split and means nothing: the connection is answered and closed.
  parse_result feed(std::span<const char> in);

  /// The parsed request; meaningful after feed() returned done.
  const request& get() const { return req_; }

  /// The status to answer with; meaningful after feed() returned error.
  status error_status() const { return error_; }

  /// After an error: the refused request's method, once the request line's method and target
  /// parsed (HEAD's answer has no content, RFC 9112 §6.3), even if its version was refused;
  /// method::other when the line was refused before.
  http::method error_method() const { return req_.method; }

  /// True once any byte of the next request arrived (header timeout vs idle timeout).
  bool started() const { return len_ > 0 || phase_ != phase::request_line; }

  /// True once per request, while feed() needs more: an HTTP/1.1 head with "Expect:
  /// 100-continue" is complete and its content has not all arrived. The client may be
  /// holding the content back, so the caller sends "HTTP/1.1 100 Continue" now (RFC 9110
  /// §10.1.1); a 1.0 request's expectation is ignored.
  bool take_continue();

  /// Prepares for the next request on the same connection; invalidates get()'s views.
  void reset();

 private:
  enum class phase : std::uint8_t { request_line, fields, body, done, error };
  enum known : std::uint8_t {
    k_host,
    k_content_length,
    k_transfer_encoding,
    k_range,
    k_if_range,
    k_if_match,
    k_if_none_match,
    k_if_modified_since,
    k_if_unmodified_since,
    k_accept_encoding,
    k_count,
    k_unknown = k_count,
    k_connection,
    k_user_agent,
    k_referer,
    k_expect
  };

  static known classify(std::string_view name);  // name: a token
  bool on_line(std::size_t begin, std::size_t end);
  bool bare_cr(const char* p, std::size_t n) const;
  bool parse_request_line(std::string_view line);
  bool parse_field_line(std::string_view line);
  bool finish_head();
  bool finish_framing();
  void join_list_field(known k, std::string_view name, std::string_view& out);
  bool fail(status s);

  parser_limits limits_;
  std::unique_ptr<char[]> arena_;  // [0, max_head_bytes): head; then join scratch
  std::unique_ptr<header_field[]> fields_;
  std::size_t len_ = 0;         // head bytes copied
  std::size_t line_start_ = 0;  // start of the line being received
  std::size_t scratch_len_ = 0;
  std::size_t nfields_ = 0;
  std::uint64_t body_left_ = 0;
  std::array<std::uint8_t, k_count> counts_{};
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool expect_continue_ = false;  // "Expect: 100-continue" seen, no 100 sent yet
  phase phase_ = phase::request_line;
  status error_ = status::bad_request;
  request req_;
};

}  // namespace pagewire::http
