#include "apps/zcbench/page_window.h"

#include <algorithm>
#include <cstring>

namespace zcbench {

namespace fs = pagewire::fs;

std::error_code page_window::fill(fs::page_pool& pool, std::span<const std::byte> memory) {
  for (std::size_t off = 0; off < memory.size(); off += fs::kPageSize) {
    const std::size_t n = std::min(fs::kPageSize, memory.size() - off);
    fs::page_ref p = pool.allocate();
    if (!p) return std::make_error_code(std::errc::not_enough_memory);
    std::memcpy(p.data(), memory.data() + off, n);
    pages_.emplace_back(std::move(p), 0, n);
    bytes_ += n;
  }
  return {};
}

void page_window::share(std::uint64_t offset, std::uint64_t n, fs::chain& out) const {
  while (n > 0) {
    const std::uint64_t at = offset % bytes_;
    const fs::slice& page = pages_[at / fs::kPageSize];
    const std::size_t in = static_cast<std::size_t>(at % fs::kPageSize);
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(n, page.size() - in));
    out.append(page.share(in, take));
    offset += take;
    n -= take;
  }
}

}  // namespace zcbench
