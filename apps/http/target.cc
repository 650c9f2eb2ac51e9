#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/target.h>

namespace pagewire::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

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
  if (end == std::string_view::npos || rest[end] != '/') return std::string_view("/");
  return rest.substr(end);
}

}  // namespace

std::optional<resolved_target> resolve_target(std::string_view target, std::span<char> scratch) {
  if (scratch.size() < target.size()) return std::nullopt;
  auto path = path_of(target);
  if (!path) return std::nullopt;
  const auto q = path->find_first_of("?#");
  if (q != std::string_view::npos) path = path->substr(0, q);

  // Decode once into scratch.
  std::size_t n = 0;
  for (std::size_t i = 0; i < path->size(); ++i) {
    char c = (*path)[i];
    if (c == '%') {
      if (i + 2 >= path->size()) return std::nullopt;
      const int hi = hex_value((*path)[i + 1]);
      const int lo = hex_value((*path)[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return std::nullopt;  // NUL, CTLs, backslash
    scratch[n++] = c;
  }
  const bool trailing_slash = n == 0 || scratch[n - 1] == '/';

  // Normalize segments in place: drop "" and ".", reject "..".
  std::size_t out = 0;
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i;
    while (j < n && scratch[j] != '/')
      ++j;
    const std::string_view seg(scratch.data() + i, j - i);
    if (seg == "..") return std::nullopt;
    if (!seg.empty() && seg != ".") {
      if (out != 0) scratch[out++] = '/';
      for (std::size_t k = i; k < j; ++k)
        scratch[out++] = scratch[k];
    }
    i = j + 1;
  }
  return resolved_target{std::string_view(scratch.data(), out), trailing_slash};
}

}  // namespace pagewire::http
