#pragma once

/// file: an open, read-only file descriptor with the stat taken when it was opened. Shared by
/// file_ranges and caches through std::shared_ptr<const file>; the descriptor closes when the
/// last holder goes, never earlier. Thread-safe (immutable after construction).

#include <cstdint>
#include <memory>
#include <sys/types.h>
#include <system_error>

namespace pagewire::fs {

/// What identifies a file's contents: change any and cached pages are stale.
struct file_version {
  std::uint64_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  friend bool operator==(const file_version&, const file_version&) = default;
};

class file {
 public:
  file(const file&) = delete;
  file& operator=(const file&) = delete;
  ~file();

  /// Takes ownership of `fd` (closed on destruction, also on error) and fstats it.
  static std::shared_ptr<const file> adopt(int fd, std::error_code& ec);
  /// open(path, O_RDONLY | O_CLOEXEC) + adopt. For tools and tests; servers use open_file_cache.
  static std::shared_ptr<const file> open(const char* path, std::error_code& ec);

  int fd() const noexcept { return fd_; }
  dev_t dev() const noexcept { return dev_; }
  ino_t ino() const noexcept { return ino_; }
  mode_t mode() const noexcept { return mode_; }
  bool regular() const noexcept;
  /// Size and times at open (or at the open_file_cache revalidation that produced this object).
  std::uint64_t size() const noexcept { return version_.size; }
  const file_version& version() const noexcept { return version_; }

  /// fstat now: the file's current version (the object's own snapshot is unchanged).
  file_version current_version(std::error_code& ec) const;

 private:
  file() = default;
  int fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  mode_t mode_ = 0;
  file_version version_;
};

}  // namespace pagewire::fs
