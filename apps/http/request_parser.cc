#include <algorithm>
#include <cstdint>
#include <cstring>

#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/request_parser.h>

namespace pagewire::http {
namespace {

// Scratch space for joining repeated list fields: every value plus ", " per field line.
std::size_t scratch_capacity(const parser_limits& l) {
  return l.max_head_bytes + 2 * l.max_fields;
}

constexpr std::uint64_t kOnes = 0x0101010101010101u;
constexpr std::uint64_t kHighs = 0x8080808080808080u;

std::uint64_t load8(const char* p) {
  std::uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}

std::uint32_t load4(const char* p) {
  std::uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// True when some byte of `w` is below 0x20 or is 0x7f (bit tricks: a byte below k borrows
// into its high bit when k is subtracted from every byte; DEL is the zero byte of w ^ 0x7f..).
bool has_ctl(std::uint64_t w) {
  const std::uint64_t below_space = (w - 0x20 * kOnes) & ~w & kHighs;
  const std::uint64_t del = w ^ (0x7f * kOnes);
  return ((below_space | ((del - kOnes) & ~del)) & kHighs) != 0;
}

// is_field_value_char over a whole value, eight bytes at a time (the last word overlaps
// the one before it): a value whose words hold no byte below 0x20 and no DEL passes at
// once; otherwise (a TAB, or a byte to reject) it is checked byte by byte. Bytes from
// 0x80 (obs-text) pass.
bool all_field_value_chars(std::string_view v) {
  const char* p = v.data();
  const std::size_t n = v.size();
  if (n >= 8) {
    bool flagged = false;
    for (std::size_t i = 0; i + 8 <= n; i += 8)
      flagged |= has_ctl(load8(p + i));
    flagged |= has_ctl(load8(p + n - 8));
    if (!flagged) return true;
  }
  for (std::size_t i = 0; i < n; ++i)
    if (!is_field_value_char(p[i])) return false;
  return true;
}

// Case-insensitive equality of `s` with `lower` (same size, at least 4; lower-case letters
// and '-'), a word at a time with the last word overlapping. For a token or a validated
// field value, OR-ing 0x20 into a byte folds an upper-case letter onto its lower case and
// maps no other allowed byte onto a letter or '-', so one OR and one compare per word decide.
inline bool folded_equals(std::string_view s, std::string_view lower) {
  const std::size_t n = lower.size();
  const char* a = s.data();
  const char* b = lower.data();
  if (n >= 8) {
    for (std::size_t i = 0; i + 8 <= n; i += 8)
      if ((load8(a + i) | 0x20 * kOnes) != load8(b + i)) return false;
    return (load8(a + n - 8) | 0x20 * kOnes) == load8(b + n - 8);
  }
  constexpr std::uint32_t kSpaces4 = 0x20202020u;
  return (load4(a) | kSpaces4) == load4(b) && (load4(a + n - 4) | kSpaces4) == load4(b + n - 4);
}

// RFC 3986 §3.2.2: the bytes of a reg-name (unreserved and sub-delims; pct-encoded is
// checked apart), which also make up IPv4 addresses.
constexpr std::array<bool, 256> kRegName = alnum_and("-._~!$&'()*+,;=");

// RFC 9112 §3.2, RFC 3986 §3.2.2-3.2.3: Host = uri-host [ ":" port ], uri-host an
// IP-literal ("[" ... "]", whose inside takes ':' as well) or a reg-name, port digits.
// Empty is valid (a target without authority). Only the syntax: the server serves one
// site and never routes on the name.
bool valid_host(std::string_view h) {
  const std::size_t n = h.size();
  const auto* b = reinterpret_cast<const unsigned char*>(h.data());
  std::size_t i = 0;
  if (n > 0 && h[0] == '[') {  // IP-literal: IPv6address or IPvFuture, then "]"
    const std::size_t close = h.find(']');
    if (close == std::string_view::npos || close < 2) return false;
    for (i = 1; i < close; ++i)
      if (!kRegName[b[i]] && b[i] != ':') return false;
    i = close + 1;
  } else {  // reg-name or IPv4address: runs of plain bytes between escapes
    for (;;) {
      while (i + 4 <= n &&
             (kRegName[b[i]] & kRegName[b[i + 1]] & kRegName[b[i + 2]] & kRegName[b[i + 3]]))
        i += 4;
      while (i < n && kRegName[b[i]])
        ++i;
      if (i + 2 >= n || h[i] != '%' || hex_value(h[i + 1]) < 0 || hex_value(h[i + 2]) < 0) break;
      i += 3;
    }
  }
  if (i == n) return true;
  if (h[i] != ':') return false;  // a '%' not followed by two hex digits ends up here too
  for (++i; i < n; ++i)
    if (!is_digit(h[i])) return false;
  return true;
}

method method_of(std::string_view name) {
  if (name == "GET") return method::get;
  if (name == "HEAD") return method::head;
  for (std::string_view known : {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
    if (name == known) return method::other;
  return method::unknown;
}

}  // namespace

request_parser::request_parser(parser_limits limits)
    : limits_(limits),
      arena_(new char[limits.max_head_bytes + scratch_capacity(limits)]),
      fields_(new header_field[limits.max_fields]) {}

void request_parser::reset() {
  len_ = line_start_ = scratch_len_ = nfields_ = 0;
  body_left_ = 0;
  counts_ = {};
  conn_close_ = conn_keep_alive_ = expect_continue_ = false;
  phase_ = phase::request_line;
  error_ = status::bad_request;
  req_ = request{};
}

bool request_parser::take_continue() {
  if (!expect_continue_ || phase_ != phase::body || req_.version != http_version::http11) {
    return false;
  }
  expect_continue_ = false;
  return true;
}

bool request_parser::fail(status s) {
  error_ = s;
  phase_ = phase::error;
  return false;
}

parse_result request_parser::feed(std::span<const char> in) {
  std::size_t used = 0;
  while (used < in.size()) {
    if (phase_ == phase::done || phase_ == phase::error) break;
    if (phase_ == phase::body) {
      const auto take =
          static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, in.size() - used));
      used += take;
      body_left_ -= take;
      if (body_left_ == 0) phase_ = phase::done;
      break;
    }
    const char* p = in.data() + used;
    const std::size_t n = in.size() - used;
    const auto* nl = static_cast<const char*>(std::memchr(p, '\n', n));
    const std::size_t take = nl ? static_cast<std::size_t>(nl - p) + 1 : n;
    // RFC 9112 §2.2: a CR followed by anything but LF is a bare CR -> 400, as soon as the byte
    // after it is here (a client ending lines with CR alone would otherwise wait for the
    // header timeout). A complete line gets it from its parser (on_line); a line not yet
    // complete, or one past the head limit, here, over the bytes within the limit only, as
    // byte by byte.
    const std::size_t fits = std::min(take, limits_.max_head_bytes - len_);
    if ((!nl || take > fits) && bare_cr(p, fits)) {
      fail(status::bad_request);
      break;
    }
    if (len_ + take > limits_.max_head_bytes) {
      // RFC 9112 §3: a request-target longer than we parse -> 414; RFC 6585 §5 -> 431.
      if (phase_ == phase::fields) {
        fail(status::request_header_fields_too_large);
      } else {
        const std::string_view seen(arena_.get() + line_start_, len_ - line_start_);
        // Look only at the first max_head_bytes so every split of the input agrees.
        const std::size_t room = limits_.max_head_bytes - len_;
        const bool in_target = seen.find(' ') != std::string_view::npos ||
                               std::memchr(p, ' ', std::min(n, room)) != nullptr;
        fail(in_target ? status::uri_too_long : status::bad_request);
      }
      break;
    }
    std::memcpy(arena_.get() + len_, p, take);
    len_ += take;
    used += take;
    if (!nl) break;
    const std::size_t begin = line_start_;
    line_start_ = len_;
    if (!on_line(begin, len_)) break;
  }
  if (phase_ == phase::done) return {parse_state::done, used};
  if (phase_ == phase::error) return {parse_state::error, used};
  return {parse_state::need_more, used};
}

// Whether a CR of the line being read is followed by a byte other than LF, given the next
// `n` bytes `p` of it: the arena's last byte with p[0], then each pair inside p.
bool request_parser::bare_cr(const char* p, std::size_t n) const {
  if (n == 0) return false;
  if (len_ > line_start_ && arena_[len_ - 1] == '\r' && p[0] != '\n') return true;
  const char* const end = p + n;
  for (const char* cr = p; (cr = static_cast<const char*>(std::memchr(cr, '\r', end - cr))); ++cr) {
    if (cr + 1 < end && cr[1] != '\n') return true;
  }
  return false;
}

// A complete line [begin, end) ending in LF. RFC 9112 §2.2: a bare LF may end a line; a
// CR anywhere else than right before the LF is a bare CR -> 400. The line parsers give that
// 400 before any other outcome of the line (a CR is neither a tchar, a target byte, part
// of "HTTP/d.d" nor a field-value byte, and the field count is checked after the value),
// so a complete line needs no scan of its own: the same 400 feed() gives a line not yet
// complete.
bool request_parser::on_line(std::size_t begin, std::size_t end) {
  std::size_t stop = end - 1;
  if (stop > begin && arena_[stop - 1] == '\r') --stop;
  const std::string_view line(arena_.get() + begin, stop - begin);
  if (phase_ == phase::request_line) {
    if (line.empty()) return true;  // RFC 9112 §2.2: ignore empty lines before the request line
    return parse_request_line(line);
  }
  if (line.empty()) return finish_head();
  return parse_field_line(line);
}

// request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
bool request_parser::parse_request_line(std::string_view line) {
  // One pass each: the method's tchars up to the first SP, then the target's visible
  // bytes up to the second (a byte <= 0x20 or >= 0x7f ends it: SP, or a reason for 400).
  const std::size_t n = line.size();
  std::size_t sp1 = 0;
  while (sp1 < n && is_tchar(line[sp1]))
    ++sp1;
  if (sp1 == 0 || sp1 == n || line[sp1] != ' ') return fail(status::bad_request);
  std::size_t sp2 = sp1 + 1;
  while (sp2<n&& static_cast<unsigned char>(line[sp2])> 0x20 &&
         static_cast<unsigned char>(line[sp2]) < 0x7f)
    ++sp2;
  // An empty target, or one ended by anything but SP (bare CR, NUL, ...): 400.
  if (sp2 == sp1 + 1 || sp2 == n || line[sp2] != ' ') return fail(status::bad_request);
  const auto method_name = line.substr(0, sp1);
  const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto version = line.substr(sp2 + 1);
  req_.method_name = method_name;  // known from here on, for an answer to a refused version
  req_.method = method_of(method_name);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3); case-sensitive. The two
  // common ones are one word compare.
  if (version.size() == 8 && load8(version.data()) == load8("HTTP/1.1")) {
    req_.version = http_version::http11;
  } else if (version.size() == 8 && load8(version.data()) == load8("HTTP/1.0")) {
    req_.version = http_version::http10;
  } else {
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !is_digit(version[5]) ||
        version[6] != '.' || !is_digit(version[7])) {
      return fail(status::bad_request);
    }
    if (version[5] != '1') return fail(status::http_version_not_supported);
    // RFC 9110 §6.2: a higher minor version is treated as the highest we implement.
    req_.version = version[7] == '0' ? http_version::http10 : http_version::http11;
  }
  req_.target = target;
  req_.request_line = line;
  phase_ = phase::fields;
  return true;
}

// Field names we act on, recognized by length first, then one folded compare (two at most).
request_parser::known request_parser::classify(std::string_view name) {
  const auto is = [&](std::string_view lower) { return folded_equals(name, lower); };
  switch (name.size()) {
    case 4:
      return is("host") ? k_host : k_unknown;
    case 5:
      return is("range") ? k_range : k_unknown;
    case 6:
      return is("expect") ? k_expect : k_unknown;
    case 7:
      return is("referer") ? k_referer : k_unknown;
    case 8:
      return is("if-range") ? k_if_range : is("if-match") ? k_if_match : k_unknown;
    case 10:
      return is("connection") ? k_connection : is("user-agent") ? k_user_agent : k_unknown;
    case 13:
      return is("if-none-match") ? k_if_none_match : k_unknown;
    case 14:
      return is("content-length") ? k_content_length : k_unknown;
    case 15:
      return is("accept-encoding") ? k_accept_encoding : k_unknown;
    case 17:
      return is("transfer-encoding")   ? k_transfer_encoding
             : is("if-modified-since") ? k_if_modified_since
                                       : k_unknown;
    case 19:
      return is("if-unmodified-since") ? k_if_unmodified_since : k_unknown;
    default:
      return k_unknown;
  }
}

bool request_parser::parse_field_line(std::string_view line) {
  // RFC 9112 §5.2: obs-fold (and whitespace before the first field) -> 400.
  if (is_ows(line.front())) return fail(status::bad_request);
  // RFC 9112 §5.1: the name is a token right up to the colon (no whitespace before it):
  // one pass over its tchars, which must stop at a ':'.
  std::size_t colon = 0;
  while (colon < line.size() && is_tchar(line[colon]))
    ++colon;
  if (colon == 0 || colon == line.size() || line[colon] != ':') return fail(status::bad_request);
  const auto name = line.substr(0, colon);
  const auto value = trim_ows(line.substr(colon + 1));
  if (!all_field_value_chars(value)) return fail(status::bad_request);  // NUL, bare CR, CTLs
  if (nfields_ == limits_.max_fields) return fail(status::request_header_fields_too_large);
  fields_[nfields_++] = header_field{name, value};

  const known id = classify(name);
  switch (id) {
    case k_connection:
      // The two common values alone, one word compare each; else the list.
      if (value.size() == 10 && folded_equals(value, "keep-alive")) {
        conn_keep_alive_ = true;
        return true;
      }
      if (value.size() == 5 && folded_equals(value, "close")) {
        conn_close_ = true;
        return true;
      }
      // RFC 9112 §9.3: connection options are case-insensitive tokens.
      for_each_list_element(value, [&](std::string_view t) {
        if (iequals(t, "close")) conn_close_ = true;
        if (iequals(t, "keep-alive")) conn_keep_alive_ = true;
      });
      return true;
    case k_expect:
      // RFC 9110 §10.1.1: "100-continue" (case-insensitive) is the one expectation defined.
      for_each_list_element(value, [&](std::string_view e) {
        if (iequals(e, "100-continue")) expect_continue_ = true;
      });
      return true;
    case k_user_agent:
      req_.user_agent = value;
      return true;
    case k_referer:
      req_.referer = value;
      return true;
    case k_unknown:
      return true;
    default:
      break;
  }
  if (counts_[id] < 255) ++counts_[id];
  if (counts_[id] > 1) return true;  // resolved in finish_head()
  switch (id) {
    case k_host:
      if (!valid_host(value)) return fail(status::bad_request);  // RFC 9112 §3.2: MUST 400
      req_.host = value;
      break;
    case k_content_length:
      if (auto v = parse_u64(value)) {
        req_.content_length = *v;
      } else {
        return fail(status::bad_request);  // RFC 9112 §6.3 (5): invalid Content-Length
      }
      break;
    case k_range:
      req_.range = value;
      break;
    case k_if_range:
      req_.if_range = value;
      break;
    case k_if_match:
      req_.if_match = value;
      break;
    case k_if_none_match:
      req_.if_none_match = value;
      break;
    case k_if_modified_since:
      req_.if_modified_since = value;
      break;
    case k_if_unmodified_since:
      req_.if_unmodified_since = value;
      break;
    case k_accept_encoding:
      req_.accept_encoding = value;
      break;
    default:
      break;
  }
  return true;
}

void request_parser::join_list_field(known k, std::string_view name, std::string_view& out) {
  if (counts_[k] < 2) return;
  char* const base = arena_.get() + limits_.max_head_bytes;
  const std::size_t start = scratch_len_;
  for (std::size_t i = 0; i < nfields_; ++i) {
    if (!iequals(fields_[i].name, name)) continue;
    if (scratch_len_ != start) {
      // The values are counted views; nothing here is NUL-terminated.
      std::memcpy(base + scratch_len_, ", ", 2);  // NOLINT(bugprone-not-null-terminated-result)
      scratch_len_ += 2;
    }
    std::memcpy(base + scratch_len_, fields_[i].value.data(), fields_[i].value.size());
    scratch_len_ += fields_[i].value.size();
  }
  out = std::string_view(base + start, scratch_len_ - start);
}

bool request_parser::finish_head() {
  // RFC 9112 §3.2: a 1.1 request lacking Host, or any request with several, -> 400.
  if (counts_[k_host] > 1) return fail(status::bad_request);
  if (req_.version == http_version::http11 && counts_[k_host] == 0) {
    return fail(status::bad_request);
  }
  if (!finish_framing()) return false;
  join_list_field(k_if_match, "if-match", req_.if_match);
  join_list_field(k_if_none_match, "if-none-match", req_.if_none_match);
  if (counts_[k_accept_encoding] > 1) {
    std::string_view joined;
    join_list_field(k_accept_encoding, "accept-encoding", joined);
    req_.accept_encoding = joined;
  }
  // Singleton fields sent twice are invalid: ignore them (RFC 9110 §13.1.3, §14.2).
  if (counts_[k_if_modified_since] > 1) req_.if_modified_since = {};
  if (counts_[k_if_unmodified_since] > 1) req_.if_unmodified_since = {};
  if (counts_[k_range] > 1 || counts_[k_if_range] > 1) req_.range = req_.if_range = {};

  req_.keep_alive =
      req_.version == http_version::http11 ? !conn_close_ : conn_keep_alive_ && !conn_close_;
  req_.fields = std::span<const header_field>(fields_.get(), nfields_);
  body_left_ = req_.content_length;
  phase_ = body_left_ > 0 ? phase::body : phase::done;
  return true;
}

// Message body framing of a request (RFC 9112 §6).
bool request_parser::finish_framing() {
  if (counts_[k_transfer_encoding] > 0) {
    // §6.1: Transfer-Encoding in a 1.0 request means faulty framing; §6.3 (3): with
    // Content-Length it is a smuggling attempt. Both -> 400 and close.
    if (req_.version == http_version::http10 || counts_[k_content_length] > 0) {
      return fail(status::bad_request);
    }
    std::string_view last;
    bool only_chunked = true;
    for (std::size_t i = 0; i < nfields_; ++i) {
      if (!iequals(fields_[i].name, "transfer-encoding")) continue;
      for_each_list_element(fields_[i].value, [&](std::string_view c) {
        last = c;
        if (!iequals(c, "chunked")) only_chunked = false;
      });
    }
    // §6.3 (4): chunked not final -> length unknowable -> 400. A chunked body we do not
    // decode -> 411 (send Content-Length instead); other codings -> 501 (§6.1).
    if (!iequals(last, "chunked")) return fail(status::bad_request);
    return fail(only_chunked ? status::length_required : status::not_implemented);
  }
  // §6.3 (5): several Content-Length lines (even equal ones) are rejected here.
  if (counts_[k_content_length] > 1) return fail(status::bad_request);
  if (req_.content_length > limits_.max_body_bytes) return fail(status::content_too_large);
  return true;
}

}  // namespace pagewire::http
