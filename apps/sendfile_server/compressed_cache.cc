#include <pagewire/apps/sendfile_server/compressed_cache.h>

namespace pagewire::sendfile_server {

compressed_cache::key compressed_cache::key_of(const fs::file& f, http::content_coding coding) {
  return key{static_cast<std::uint64_t>(f.dev()), static_cast<std::uint64_t>(f.ino()), f.version(),
             coding};
}

std::size_t compressed_cache::hash::operator()(const key& k) const noexcept {
  std::uint64_t h = k.ino * 0x9e3779b97f4a7c15ULL;
  h ^= k.dev + (h << 6) + (h >> 2);
  h ^= static_cast<std::uint64_t>(k.version.mtime_ns) + (h << 6) + (h >> 2);
  h ^= static_cast<std::uint64_t>(k.version.ctime_ns) + (h << 6) + (h >> 2);
  h ^= k.version.size + (h << 6) + (h >> 2);
  h ^= static_cast<std::uint64_t>(k.coding) + (h << 6) + (h >> 2);
  return static_cast<std::size_t>(h);
}

bool compressed_cache::find(const key& k, fs::chain& out) {
  const auto it = map_.find(k);
  if (it == map_.end()) return false;
  lru_.splice(lru_.begin(), lru_, it->second);
  out = it->second->body;
  return true;
}

void compressed_cache::insert(const key& k, const fs::chain& body) {
  const std::size_t n = body.size();
  if (n > budget_ / 4 || map_.count(k) != 0) return;
  while (bytes_ + n > budget_ && !lru_.empty()) {
    bytes_ -= lru_.back().body.size();
    map_.erase(lru_.back().k);
    lru_.pop_back();
  }
  lru_.push_front(entry{k, body});
  map_.emplace(k, lru_.begin());
  bytes_ += n;
}

}  // namespace pagewire::sendfile_server
