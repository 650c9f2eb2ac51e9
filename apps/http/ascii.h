#pragma once

/// ASCII character classes, case-insensitive comparison and number parsing for HTTP
/// (RFC 9110 §5.6). Header-only and stateless: safe to call from any thread.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace pagewire::http {

/// A byte-class table: true for ASCII letters, digits and the bytes of `extra` (the shape of
/// every class HTTP and URIs define: tchar, unreserved, reg-name...).
constexpr std::array<bool, 256> alnum_and(std::string_view extra) {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = t[c - 'a' + 'A'] = true;
  for (const char c : extra)
    t[static_cast<unsigned char>(c)] = true;
  return t;
}

namespace detail {
inline constexpr std::array<bool, 256> kTcharTable = alnum_and("!#$%&'*+-.^_`|~");
}  // namespace detail

/// tchar (RFC 9110 §5.6.2): the characters allowed in a token.
constexpr bool is_tchar(char c) {
  return detail::kTcharTable[static_cast<unsigned char>(c)];
}

constexpr bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

/// The value of a hex digit (either case), -1 for any other byte.
constexpr int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// OWS (RFC 9110 §5.6.3): space or horizontal tab.
constexpr bool is_ows(char c) {
  return c == ' ' || c == '\t';
}

/// A byte allowed inside a field value (RFC 9110 §5.5): VCHAR, obs-text, SP, HTAB.
constexpr bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

constexpr char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  return true;
}

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back()))
    s.remove_suffix(1);
  return s;
}

/// 1*DIGIT as a uint64_t; nullopt when empty, not all digits, or above UINT64_MAX.
constexpr std::optional<std::uint64_t> parse_u64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

/// Calls fn(element) for each non-empty, OWS-trimmed element of a comma-separated list
/// (RFC 9110 §5.6.1: recipients accept and skip empty elements). Not quote-aware.
template <typename Fn>
constexpr void for_each_list_element(std::string_view list, Fn&& fn) {
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto elem = trim_ows(list.substr(0, comma));
    if (!elem.empty()) fn(elem);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace pagewire::http
