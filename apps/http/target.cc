#include <array>

#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/target.h>

namespace pagewire::http {
namespace {

// Bytes that need no decision in a path: everything but '?', '#', '%', '/', '\\',
// control bytes and DEL.
constexpr std::array<bool, 256> make_plain_table() {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x100; ++c)
    t[c] = c != '?' && c != '#' && c != '%' && c != '/' && c != '\\' && c != 0x7f;
  return t;
}
constexpr std::array<bool, 256> kPlain = make_plain_table();

// absolute-form (RFC 9112 §3.2.2): keep only the path of "http(s)://authority/path".
std::optional<std::string_view> path_of(std::string_view t) {
  if (!t.empty() && t.front() == '/') return t;
  std::string_view rest;
  if (t.size() >= 7 && iequals(t.substr(0, 7), "http://")) {
    rest = t.substr(7);
  } else if (t.size() >= 8 && iequals(t.substr(0, 8), "https://")) {
    rest = t.substr(8);
  } else {
    return std::nullopt;
  }
  const auto end = rest.find_first_of("/?#");
  if (end == 0) return std::nullopt;  // empty authority
  // RFC 9110 §4.2.4: userinfo ("user:password@host") is deprecated and treated as an error.
  if (rest.substr(0, end).find('@') != std::string_view::npos) return std::nullopt;
  if (end == std::string_view::npos || rest[end] != '/') return std::string_view("/");
  return rest.substr(end);
}

// RFC 3986 §2-3: unreserved, sub-delims, ':', '@', '/', '?' and '%' (escapes already made)
// may stand in a URI's path and query as they are.
constexpr std::array<bool, 256> kUriByte = alnum_and("-._~!$&'()*+,;=:@/?%");
// RFC 3986 §2.3: the unreserved characters, and '/'.
constexpr std::array<bool, 256> kNameByte = alnum_and("-._~/");

}  // namespace

bool directory_location(std::string_view target, std::string_view resolved_path, std::string& out) {
  const auto path = path_of(target);
  if (!path) return false;
  std::string_view query;  // "?..." up to a fragment; a '?' inside the fragment is not one
  if (const auto end = path->find_first_of("?#");
      end != std::string_view::npos && (*path)[end] == '?')
    query = path->substr(end, path->find('#', end) - end);
  out.assign(1, '/');
  append_percent_encoded(out, resolved_path, uri_bytes::name);
  if (!resolved_path.empty()) out += '/';
  append_percent_encoded(out, query, uri_bytes::uri);
  return true;
}

void append_percent_encoded(std::string& out, std::string_view s, uri_bytes keep) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const std::array<bool, 256>& plain = keep == uri_bytes::uri ? kUriByte : kNameByte;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (plain[u]) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

// One pass over the path: stop at '?' or '#', decode percent-escapes, and normalize
// segments as they end (drop "" and ".", reject ".."), writing each kept segment once.
// A decoded '/' separates segments like a literal one. The output never outgrows the
// input: every separator written stands for at least one '/' read.
std::optional<resolved_target> resolve_target(std::string_view target, std::span<char> scratch) {
  if (scratch.size() < target.size()) return std::nullopt;
  const auto path = path_of(target);
  if (!path) return std::nullopt;
  const char* const p = path->data();
  const std::size_t size = path->size();

  std::size_t out = 0;                // bytes written to scratch
  std::size_t seg = 0;                // where the current segment's bytes start in scratch
  std::size_t mark = 0;               // `out` before the current segment (and its separator)
  bool in_segment = false;            // a segment has bytes written
  bool any = false;                   // decoded at least one byte
  char last = 0;                      // the last decoded byte
  const auto begin_segment = [&]() {  // the first byte of a segment follows: its separator
    if (in_segment) return;
    mark = out;
    if (out != 0) scratch[out++] = '/';
    seg = out;
    in_segment = true;
  };
  const auto end_segment = [&]() {
    if (!in_segment) return true;
    in_segment = false;
    const std::size_t n = out - seg;
    if (n == 1 && scratch[seg] == '.') {
      out = mark;  // "." names the directory it is in
    } else if (n == 2 && scratch[seg] == '.' && scratch[seg + 1] == '.') {
      return false;
    }
    return true;
  };
  for (std::size_t i = 0; i < size; ++i) {
    char c = p[i];
    if (kPlain[static_cast<unsigned char>(c)]) {  // a run of plain bytes: copied as they are
      begin_segment();
      scratch[out++] = c;
      while (i + 1 < size && kPlain[static_cast<unsigned char>(p[i + 1])])
        scratch[out++] = p[++i];
      any = true;
      last = p[i];
      continue;
    }
    if (c == '?' || c == '#') break;
    if (c == '%') {
      if (i + 2 >= size) return std::nullopt;
      const int hi = hex_value(p[i + 1]);
      const int lo = hex_value(p[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return std::nullopt;  // NUL, CTLs, backslash
    any = true;
    last = c;
    if (c == '/') {
      if (!end_segment()) return std::nullopt;
      continue;
    }
    begin_segment();
    scratch[out++] = c;
  }
  // RFC 3986 §5.2.4: a last segment "." leaves the path ending in '/' ("/a/." is "/a/").
  const bool last_is_dot = in_segment && out - seg == 1 && scratch[seg] == '.';
  if (!end_segment()) return std::nullopt;
  return resolved_target{std::string_view(scratch.data(), out), !any || last == '/' || last_is_dot};
}

}  // namespace pagewire::http
