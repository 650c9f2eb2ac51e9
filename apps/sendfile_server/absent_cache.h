#pragma once

/// Paths under the root that failed to open, each remembered for `ttl` after the lookup
/// that failed. fs::open_file_cache keeps only files that opened, so without this a path
/// asked for on every request and never there (a precompressed sibling "x.gz" that was
/// never made, with --compress) costs an openat2 per request. Revalidated on the same
/// schedule as open_file_cache entries: once ttl has passed, the next lookup goes to the
/// filesystem again, so a file created later is seen within ttl.
///
/// Bounded: at most max_entries paths; when a new one would exceed that, the whole set
/// is dropped and re-learnt by the next lookups (no per-entry bookkeeping on the hot path).
///
/// Ownership: a value type; keys are copies. Threading: one per worker thread, no locking.
/// Errors: none (allocation failure throws, as for any std container).

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace pagewire::sendfile_server {

class absent_cache {
 public:
  using clock = std::chrono::steady_clock;

  explicit absent_cache(std::chrono::nanoseconds ttl, std::size_t max_entries = 4096)
      : ttl_(ttl), max_entries_(max_entries) {}

  /// True when a lookup of `path` failed less than ttl before `now`.
  bool known_absent(std::string_view path, clock::time_point now) const;
  /// Records that `path` failed to open at `now` (replacing an older record).
  void note_absent(std::string_view path, clock::time_point now);
  /// Paths recorded (expired ones included until replaced or dropped).
  std::size_t size() const noexcept { return absent_.size(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  std::chrono::nanoseconds ttl_;
  std::size_t max_entries_;
  std::unordered_map<std::string, clock::time_point, string_hash, std::equal_to<>> absent_;
};

}  // namespace pagewire::sendfile_server
