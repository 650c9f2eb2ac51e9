#pragma once

/// open_file_cache: files opened by path beneath one root directory, with their stat, kept open
/// for reuse. Paths resolve with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) under the root
/// fd, so "..", absolute symlinks and /proc magic links cannot escape the root (kernels without
/// openat2 get a component-by-component walk that refuses every symlink and "..").
///
/// An entry older than `revalidate_after` is re-opened and re-stat'ed on its next lookup; if the
/// path now names another inode or the version (size, mtime, ctime) changed, a new `file` replaces
/// it. invalidate() forces that on the next lookup. At most `max_entries` are kept (least recently
/// used go first). Dropping an entry only drops the cache's shared_ptr: a descriptor closes when
/// no file_range or page_cache read still holds it.
///
/// Threading: every member is thread-safe (one mutex; syscalls run outside it). Errors: errno as
/// std::error_code (ENOENT, EXDEV for an escape attempt, ELOOP for a refused symlink, ...).

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

#include <pagewire/fs/file.h>

namespace pagewire::fs {

struct open_file_cache_options {
  std::size_t max_entries = 1024;
  /// Age after which an entry is re-checked against the filesystem. Zero: every lookup.
  std::chrono::nanoseconds revalidate_after = std::chrono::seconds(1);
  /// False forces the portable component walk (kernels before 5.6, and tests).
  bool use_openat2 = true;
};

struct open_file_cache_stats {
  std::uint64_t hits = 0;           ///< served from the cache without a syscall
  std::uint64_t misses = 0;         ///< opened afresh
  std::uint64_t revalidations = 0;  ///< re-checked because of age or invalidate()
  std::uint64_t replaced = 0;       ///< revalidation found a different inode or version
  std::uint64_t evictions = 0;      ///< dropped to stay within max_entries
  std::size_t entries = 0;
};

class open_file_cache {
 public:
  /// Opens `root` (a directory) as the resolution root; on error returns nullptr and sets ec.
  static std::unique_ptr<open_file_cache> create(const char* root, open_file_cache_options options,
                                                 std::error_code& ec);
  /// Adopts `root_fd` (an O_PATH or O_RDONLY directory descriptor; closed on destruction).
  open_file_cache(int root_fd, open_file_cache_options options);
  open_file_cache(const open_file_cache&) = delete;
  open_file_cache& operator=(const open_file_cache&) = delete;
  ~open_file_cache();

  /// The open file for `path` (relative to the root; leading '/' ignored), or nullptr with ec.
  std::shared_ptr<const file> open(std::string_view path, std::error_code& ec);
  /// Makes the next open(path) revalidate (call when a version change was noticed elsewhere).
  void invalidate(std::string_view path);
  void clear();
  open_file_cache_stats stats() const;
  int root_fd() const noexcept { return root_fd_; }

 private:
  struct entry {
    std::string path;
    std::shared_ptr<const file> f;
    std::chrono::steady_clock::time_point checked;
    bool stale = false;  // set by invalidate()
  };
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using lru_list = std::list<entry>;

  int open_beneath(const std::string& rel, std::error_code& ec) const;
  void store(std::string_view path, std::shared_ptr<const file> f,
             std::chrono::steady_clock::time_point now);

  int root_fd_;
  open_file_cache_options options_;
  mutable std::mutex mu_;
  lru_list lru_;  // most recently used first
  std::unordered_map<std::string, lru_list::iterator, string_hash, std::equal_to<>> index_;
  open_file_cache_stats stats_;
};

}  // namespace pagewire::fs
