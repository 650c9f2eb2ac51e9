#include <cstdint>

#include <pagewire/apps/sendfile_server/resident_bodies.h>

namespace pagewire::sendfile_server {

std::size_t resident_bodies::slot_of(const fs::file& f, std::uint64_t offset) noexcept {
  const auto p = reinterpret_cast<std::uintptr_t>(&f);
  const std::uint64_t h = (static_cast<std::uint64_t>(p) ^ offset) * 0x9E3779B97F4A7C15u;
  return static_cast<std::size_t>(h >> 60) % kEntries;  // top 4 bits: 16 slots
}

bool resident_bodies::append(const fs::file& f, std::uint64_t offset, std::uint64_t length,
                             fs::chain& out) const {
  const entry& e = entries_[slot_of(f, offset)];
  if (e.file.get() != &f || e.offset != offset || e.length != length) return false;
  for (std::size_t i = 0; i < e.count; ++i)
    out.append(e.pages[i].share());
  return true;
}

void resident_bodies::remember(const std::shared_ptr<const fs::file>& f, std::uint64_t offset,
                               std::uint64_t length, std::span<const fs::slice> pages) {
  if (pages.size() > kMaxPages) return;
  entry& e = entries_[slot_of(*f, offset)];
  e.file = f;
  e.offset = offset;
  e.length = length;
  for (std::size_t i = 0; i < pages.size(); ++i)
    e.pages[i] = pages[i];
  for (std::size_t i = pages.size(); i < e.count; ++i)
    e.pages[i] = fs::slice();  // release what the evicted body held beyond the new one
  e.count = pages.size();
}

}  // namespace pagewire::sendfile_server
