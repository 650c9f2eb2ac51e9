#include <pagewire/apps/sendfile_server/absent_cache.h>

namespace pagewire::sendfile_server {

bool absent_cache::known_absent(std::string_view path, clock::time_point now) const {
  if (absent_.empty()) return false;
  const auto it = absent_.find(path);
  return it != absent_.end() && now - it->second < ttl_;
}

void absent_cache::note_absent(std::string_view path, clock::time_point now) {
  if (const auto it = absent_.find(path); it != absent_.end()) {
    it->second = now;
    return;
  }
  if (absent_.size() >= max_entries_) absent_.clear();
  absent_.emplace(std::string(path), now);
}

}  // namespace pagewire::sendfile_server
