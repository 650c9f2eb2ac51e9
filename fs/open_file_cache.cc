#include <cerrno>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pagewire/fs/open_file_cache.h>

namespace pagewire::fs {
namespace {

// O_NONBLOCK: opening a FIFO (or a device) with O_RDONLY alone blocks until a writer
// appears, which would stall the caller's event loop. Regular files get the flag cleared
// again after fstat (io_uring reads on an O_NONBLOCK file return EAGAIN instead of waiting
// for the disk).
constexpr int kOpenFlags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;

void clear_nonblock(int fd) {
  const int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

std::string_view relative(std::string_view path) {
  while (!path.empty() && path.front() == '/')
    path.remove_prefix(1);
  return path.empty() ? std::string_view(".") : path;
}

// Walks `rel` one component at a time with O_NOFOLLOW: no symlink, no "..", ever.
int walk_beneath(int root, const std::string& rel, std::error_code& ec) {
  int dir = root;
  std::size_t pos = 0;
  while (true) {
    std::size_t slash = rel.find('/', pos);
    std::string comp =
        rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    bool last =
        slash == std::string::npos || rel.find_first_not_of('/', slash) == std::string::npos;
    if (comp == "..") {
      if (dir != root) ::close(dir);
      ec.assign(EXDEV, std::system_category());
      return -1;
    }
    const char* name = comp.empty() ? "." : comp.c_str();
    int flags = last ? (kOpenFlags | O_NOFOLLOW) : (O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int fd = ::openat(dir, name, flags);
    int err = errno;
    // O_PATH | O_NOFOLLOW opens a symlink itself, which O_DIRECTORY then refuses as ENOTDIR:
    // report a refused symlink as one (ELOOP), like the last component's O_NOFOLLOW does.
    struct stat st;
    if (fd < 0 && err == ENOTDIR && !last && ::fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode)) {
      err = ELOOP;
    }
    if (dir != root) ::close(dir);
    if (fd < 0) {
      ec.assign(err, std::system_category());
      return -1;
    }
    if (last) return fd;
    dir = fd;
    pos = rel.find_first_not_of('/', slash);
  }
}

}  // namespace

std::unique_ptr<open_file_cache> open_file_cache::create(const char* root,
                                                         open_file_cache_options options,
                                                         std::error_code& ec) {
  ec.clear();
  int fd = ::open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    ec.assign(errno, std::system_category());
    return nullptr;
  }
  return std::make_unique<open_file_cache>(fd, options);
}

open_file_cache::open_file_cache(int root_fd, open_file_cache_options options)
    : root_fd_(root_fd), options_(options) {
  if (options_.max_entries == 0) options_.max_entries = 1;
}

open_file_cache::~open_file_cache() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

int open_file_cache::open_beneath(const std::string& rel, std::error_code& ec) const {
  ec.clear();
  if (rel.find('\0') != std::string::npos) {
    ec.assign(EINVAL, std::system_category());
    return -1;
  }
  if (options_.use_openat2) {
    open_how how{};
    how.flags = kOpenFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, root_fd_, rel.c_str(), &how, sizeof(how));
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != ENOSYS) {
      ec.assign(errno, std::system_category());
      return -1;
    }
  }
  return walk_beneath(root_fd_, rel, ec);
}

std::shared_ptr<const file> open_file_cache::open(std::string_view path, std::error_code& ec) {
  ec.clear();
  std::string_view rel = relative(path);
  auto now = std::chrono::steady_clock::now();
  std::shared_ptr<const file> cached;
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(rel);
    if (it != index_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
      if (!it->second->stale && now - it->second->checked < options_.revalidate_after) {
        ++stats_.hits;
        return it->second->f;
      }
      ++stats_.revalidations;
      cached = it->second->f;
    } else {
      ++stats_.misses;
    }
  }
  std::string key(rel);
  int fd = open_beneath(key, ec);
  if (fd < 0) {
    if (cached) invalidate(key);
    return nullptr;
  }
  std::shared_ptr<const file> fresh = file::adopt(fd, ec);
  if (!fresh) return nullptr;
  if (fresh->regular()) clear_nonblock(fresh->fd());
  if (cached && cached->dev() == fresh->dev() && cached->ino() == fresh->ino() &&
      cached->version() == fresh->version()) {
    fresh = cached;  // unchanged: keep the descriptor page_cache keys already know
  } else if (cached) {
    std::lock_guard lock(mu_);
    ++stats_.replaced;
  }
  store(key, fresh, now);
  return fresh;
}

void open_file_cache::store(std::string_view path, std::shared_ptr<const file> f,
                            std::chrono::steady_clock::time_point now) {
  std::shared_ptr<const file> dropped;  // released outside the lock
  std::lock_guard lock(mu_);
  auto it = index_.find(path);
  if (it != index_.end()) {
    dropped = std::move(it->second->f);
    it->second->f = std::move(f);
    it->second->checked = now;
    it->second->stale = false;
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.push_front(entry{std::string(path), std::move(f), now});
  index_.emplace(lru_.front().path, lru_.begin());
  if (lru_.size() > options_.max_entries) {
    index_.erase(lru_.back().path);
    dropped = std::move(lru_.back().f);
    lru_.pop_back();
    ++stats_.evictions;
  }
}

void open_file_cache::invalidate(std::string_view path) {
  std::lock_guard lock(mu_);
  auto it = index_.find(relative(path));
  if (it != index_.end()) it->second->stale = true;
}

void open_file_cache::clear() {
  lru_list dropped;
  std::lock_guard lock(mu_);
  index_.clear();
  dropped.swap(lru_);
}

open_file_cache_stats open_file_cache::stats() const {
  std::lock_guard lock(mu_);
  open_file_cache_stats s = stats_;
  s.entries = lru_.size();
  return s;
}

}  // namespace pagewire::fs
