#pragma once

/// text_bytes: n bytes of text-like content (HTML/JSON words in a fixed pseudo-random order),
/// the input the filter benchmarks compress and encrypt: gzip -6 shrinks it about 10x, like
/// real markup. Deterministic (same bytes for the same n), header-only, no shared state.

#include <cstddef>
#include <random>
#include <vector>

namespace pagewire::bench {

inline std::vector<std::byte> text_bytes(std::size_t n) {
  static const char* const words[] = {
      "<div class=\"row\">", "pagewire ", "zero-copy ", "splice ", "{\"id\": ", "12345, ",
      "\"name\": ",          "the ",      "</div>\n",   "GET / "};
  std::vector<std::byte> v(n);
  std::mt19937_64 g(5);
  for (std::size_t i = 0; i < n;) {
    const char* w = words[g() % 10];
    for (std::size_t k = 0; w[k] && i < n; ++k)
      v[i++] = static_cast<std::byte>(w[k]);
  }
  return v;
}

}  // namespace pagewire::bench
