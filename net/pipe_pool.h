#pragma once

/// pipe_pool: the pipes splice_pipe moves bytes through, created with pipe2(O_NONBLOCK |
/// O_CLOEXEC) and sized once with F_SETPIPE_SZ, reused while clean. A pipe that may still hold
/// bytes (after an error or a cancel) is returned with clean = false and closed: never reused
/// dirty. The pool also remembers, per file kind, which fallback a refused splice led to, so
/// the refusal is paid (and logged) once per kind, not once per transfer.
///
/// Ownership: the pool owns idle pipes; an acquired pipe_handle belongs to its holder until
/// release(). Threading: one pool per loop thread (no locking); the pool outlives its users.
/// Errors: acquire() returns the errno of pipe2 (EMFILE, ENFILE) as std::error_code.

#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

#include <pagewire/net/policy.h>
#include <pagewire/runtime/sys_error.h>

namespace pagewire::net {

/// Both ends of one pipe and its capacity in bytes (what F_SETPIPE_SZ granted).
struct pipe_handle {
  int read_fd = -1;
  int write_fd = -1;
  std::size_t capacity = 0;
  explicit operator bool() const noexcept { return read_fd >= 0; }
};

/// How bytes of one file kind move when splice is refused.
enum class transfer_path : std::uint8_t {
  splice = 0,     ///< IORING_OP_SPLICE through a pipe (the fast path)
  sendfile = 1,   ///< sendfile(2): splice refused (EINVAL), file -> socket only
  read_send = 2,  ///< read into user memory, then send (bytes counted in fs::stats)
};

/// What identifies a "file kind" for fallback decisions: the file type (S_IFMT) and the
/// filesystem type (statfs f_type) of both ends.
struct file_kind {
  std::uint32_t src_mode = 0;
  std::int64_t src_fs = 0;
  std::uint32_t dst_mode = 0;
  std::int64_t dst_fs = 0;
  friend bool operator==(const file_kind&, const file_kind&) = default;
  /// fstat + fstatfs of both descriptors (zeros for what fails).
  static file_kind of(int src_fd, int dst_fd) noexcept;
};

struct pipe_pool_stats {
  std::uint64_t created = 0;    ///< pipes made with pipe2
  std::uint64_t reused = 0;     ///< acquisitions served from the idle list
  std::uint64_t discarded = 0;  ///< pipes closed because they may hold bytes
  std::size_t idle = 0;         ///< pipes waiting in the pool now
  std::size_t capacity = 0;     ///< capacity the last created pipe got
  /// Pipes created smaller than options::pipe_size: F_SETPIPE_SZ was refused (a size above
  /// /proc/sys/fs/pipe-max-size, or the user past pipe-user-pages-soft, where the kernel also
  /// makes new pipes 2 pages). They work; file ranges move in smaller steps.
  std::uint64_t undersized = 0;
};

class pipe_pool {
 public:
  /// `opts` must be validated; the pool reads pipe_size and pipe_pool_max.
  explicit pipe_pool(const options& opts);
  pipe_pool(const pipe_pool&) = delete;
  pipe_pool& operator=(const pipe_pool&) = delete;
  ~pipe_pool();

  /// An empty pipe: an idle one, or a new one sized with F_SETPIPE_SZ. If the kernel refuses
  /// the size, the pipe keeps the size it has, stats().undersized counts it, and the first
  /// such pipe in the process is logged (runtime::log_line) with the sizes and the limits to
  /// look at. On failure an empty handle and `ec` set.
  /// (Inline: a transfer takes and returns a pipe per message, and the idle list serves most.)
  pipe_handle acquire(std::error_code& ec) {
    if (idle_.empty()) return create(ec);
    ec = runtime::no_error();
    const pipe_handle p = idle_.back();
    idle_.pop_back();
    ++stats_.reused;
    return p;
  }
  /// Gives `p` back. `clean`: the holder knows it is empty; otherwise it is closed.
  void release(pipe_handle p, bool clean) noexcept {
    if (clean && p && idle_.size() < max_idle_) {
      idle_.push_back(p);
      return;
    }
    drop(p, clean);
  }

  /// True once any refusal was recorded (until then no transfer needs to classify its files).
  bool has_fallbacks() const noexcept { return !kinds_.empty(); }
  /// The path to use for `kind` (transfer_path::splice until a refusal was recorded).
  transfer_path path_for(const file_kind& kind) const noexcept;
  /// Records that `kind` needs at least `path`; logs it to stderr the first time this process
  /// sees that kind and path.
  void record_fallback(const file_kind& kind, transfer_path path);

  pipe_pool_stats stats() const noexcept;

 private:
  pipe_handle create(std::error_code& ec);
  /// A returned pipe that is not kept: dirty (stats().discarded), or past pipe_pool_max.
  void drop(pipe_handle p, bool clean) noexcept;

  struct kind_entry {
    file_kind kind;
    transfer_path path;
  };
  std::size_t want_size_;
  std::size_t max_idle_;
  std::vector<pipe_handle> idle_;
  std::vector<kind_entry> kinds_;
  pipe_pool_stats stats_;
};

}  // namespace pagewire::net
