#pragma once

/// A pipe for splice loops, sized with F_SETPIPE_SZ. Owns both descriptors and
/// closes them on destruction; move-only; one thread at a time.

#include <cstddef>
#include <system_error>

namespace zcbench {

class pipe_pair {
 public:
  pipe_pair() = default;
  pipe_pair(const pipe_pair&) = delete;
  pipe_pair& operator=(const pipe_pair&) = delete;
  pipe_pair(pipe_pair&& other) noexcept;
  pipe_pair& operator=(pipe_pair&& other) noexcept;
  ~pipe_pair();

  /// Opens a pipe (O_CLOEXEC) and asks for `want` bytes of capacity, clamped to
  /// [one page, /proc/sys/fs/pipe-max-size]. A refused resize keeps the default
  /// capacity; `capacity()` says what the kernel granted.
  static pipe_pair open(std::size_t want, std::error_code& ec);

  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  std::size_t capacity() const { return capacity_; }

 private:
  void reset();

  int fds_[2] = {-1, -1};
  std::size_t capacity_ = 0;
};

/// /proc/sys/fs/pipe-max-size, or 1 MiB (its default) when unreadable.
std::size_t pipe_max_size();

}  // namespace zcbench
