#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <mutex>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <vector>

#include <pagewire/net/pipe_pool.h>
#include <pagewire/runtime/log.h>
#include <pagewire/runtime/sys_error.h>

namespace pagewire::net {
namespace {

void close_pipe(pipe_handle& p) noexcept {
  if (p.read_fd >= 0) ::close(p.read_fd);
  if (p.write_fd >= 0) ::close(p.write_fd);
  p = {};
}

const char* path_name(transfer_path p) {
  switch (p) {
    case transfer_path::splice:
      return "splice";
    case transfer_path::sendfile:
      return "sendfile";
    case transfer_path::read_send:
      return "read+send";
  }
  return "?";
}

// Process-wide: each (kind, path) is logged once whichever pool met it first.
std::mutex g_log_mutex;
std::vector<std::pair<file_kind, transfer_path>> g_logged;

void log_once(const file_kind& k, transfer_path p) {
  std::lock_guard lock(g_log_mutex);
  for (const auto& e : g_logged) {
    if (e.first == k && e.second == p) return;
  }
  g_logged.emplace_back(k, p);
  runtime::log_line(
      "splice refused for file kind (mode %#o fs %#llx -> mode %#o fs %#llx); using %s", k.src_mode,
      static_cast<unsigned long long>(k.src_fs), k.dst_mode,
      static_cast<unsigned long long>(k.dst_fs), path_name(p));
}

// Process-wide, once: pipes smaller than asked slow every pipe transfer without failing one.
std::once_flag g_undersized_logged;

void log_undersized(std::size_t want, std::size_t got, int err) {
  std::call_once(g_undersized_logged, [&] {
    runtime::log_line(
        "pipes get %zu bytes, not the %zu asked (F_SETPIPE_SZ: %s); see /proc/sys/fs/"
        "pipe-max-size and pipe-user-pages-soft: file ranges move in smaller steps",
        got, want, runtime::sys_error(err).message().c_str());
  });
}

void describe(int fd, std::uint32_t& mode, std::int64_t& fs) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) == 0) mode = st.st_mode & S_IFMT;
  struct statfs sfs {};
  if (::fstatfs(fd, &sfs) == 0) fs = static_cast<std::int64_t>(sfs.f_type);
}

}  // namespace

file_kind file_kind::of(int src_fd, int dst_fd) noexcept {
  file_kind k;
  describe(src_fd, k.src_mode, k.src_fs);
  describe(dst_fd, k.dst_mode, k.dst_fs);
  return k;
}

pipe_pool::pipe_pool(const options& opts)
    : want_size_(opts.pipe_size), max_idle_(opts.pipe_pool_max) {}

pipe_pool::~pipe_pool() {
  for (pipe_handle& p : idle_)
    close_pipe(p);
}

pipe_handle pipe_pool::create(std::error_code& ec) {
  ec = runtime::no_error();
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    ec = runtime::sys_error(errno);
    return {};
  }
  pipe_handle p{fds[0], fds[1], 0};
  // EPERM above /proc/sys/fs/pipe-max-size, or past pipe-user-pages-soft, for users without
  // CAP_SYS_RESOURCE: the pipe keeps the size it has (2 pages past the soft limit).
  int got = ::fcntl(p.write_fd, F_SETPIPE_SZ, static_cast<int>(want_size_));  // the new size
  if (got < 0) {
    const int err = errno;
    got = ::fcntl(p.write_fd, F_GETPIPE_SZ);
    if (got > 0 && static_cast<std::size_t>(got) < want_size_) {
      ++stats_.undersized;
      log_undersized(want_size_, static_cast<std::size_t>(got), err);
    }
  }
  p.capacity = got > 0 ? static_cast<std::size_t>(got) : 65536;
  ++stats_.created;
  stats_.capacity = p.capacity;
  return p;
}

void pipe_pool::drop(pipe_handle p, bool clean) noexcept {
  if (!p) return;
  if (!clean) ++stats_.discarded;
  close_pipe(p);
}

transfer_path pipe_pool::path_for(const file_kind& kind) const noexcept {
  for (const kind_entry& e : kinds_) {
    if (e.kind == kind) return e.path;
  }
  return transfer_path::splice;
}

void pipe_pool::record_fallback(const file_kind& kind, transfer_path path) {
  auto it = std::find_if(kinds_.begin(), kinds_.end(),
                         [&](const kind_entry& e) { return e.kind == kind; });
  if (it == kinds_.end()) {
    kinds_.push_back({kind, path});
  } else if (it->path < path) {
    it->path = path;
  } else {
    return;
  }
  log_once(kind, path);
}

pipe_pool_stats pipe_pool::stats() const noexcept {
  pipe_pool_stats s = stats_;
  s.idle = idle_.size();
  return s;
}

}  // namespace pagewire::net
