#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>
#include <utility>

#include <pagewire/apps/sendfile_server/access_log_writer.h>

namespace pagewire::sendfile_server {

void access_log_writer::buffer::append(const http::access_log_entry& e) {
  bool full = false;
  {
    std::lock_guard lock(mu_);
    http::append_combined_log(lines_, e);
    full = lines_.size() >= kHighWater;
  }
  if (full) owner_->wake();
}

namespace {

int open_log(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

}  // namespace

std::unique_ptr<access_log_writer> access_log_writer::open(const std::string& path,
                                                           std::size_t workers,
                                                           std::error_code& ec) {
  if (path == "-")
    return std::unique_ptr<access_log_writer>(new access_log_writer(1, false, workers, ""));
  const int fd = open_log(path);
  if (fd < 0) {
    ec = std::error_code(errno, std::system_category());
    return nullptr;
  }
  return std::unique_ptr<access_log_writer>(new access_log_writer(fd, true, workers, path));
}

access_log_writer::access_log_writer(int fd, bool own_fd, std::size_t workers, std::string path)
    : fd_(fd), own_fd_(own_fd), path_(std::move(path)) {
  buffers_.reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    buffers_.push_back(std::make_unique<buffer>());
    buffers_.back()->owner_ = this;
  }
  thread_ = std::thread([this] { run(); });
}

access_log_writer::~access_log_writer() {
  stop();
  if (own_fd_) ::close(fd_);
}

void access_log_writer::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void access_log_writer::reopen() {
  {
    std::lock_guard lock(mu_);
    reopen_requested_ = true;
  }
  cv_.notify_one();
}

void access_log_writer::run() {
  std::string scratch;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!reopen_requested_) cv_.wait_for(lock, kFlushInterval);  // or a wake(): high water
    const bool reopen = std::exchange(reopen_requested_, false);
    lock.unlock();
    flush_all(scratch);  // lines appended before the request go to the file open until now
    if (reopen) reopen_now();
    lock.lock();
  }
  lock.unlock();
  flush_all(scratch);
}

void access_log_writer::reopen_now() {
  if (path_.empty()) return;  // stdout
  const int fd = open_log(path_);
  if (fd < 0) {
    const int err = errno;
    if (reopen_errors_.fetch_add(1, std::memory_order_relaxed) == 0) {
      std::fprintf(stderr,
                   "sendfile_server: cannot reopen access log %s: %s; keeping the old one\n",
                   path_.c_str(), std::strerror(err));
    }
    return;
  }
  ::close(fd_);
  fd_ = fd;
  reopens_.fetch_add(1, std::memory_order_relaxed);
}

void access_log_writer::flush_all(std::string& scratch) {
  for (auto& b : buffers_) {
    scratch.clear();
    {
      std::lock_guard lock(b->mu_);
      scratch.swap(b->lines_);
    }
    std::size_t off = 0;
    while (off < scratch.size()) {
      const ssize_t n = ::write(fd_, scratch.data() + off, scratch.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        write_errors_.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      off += static_cast<std::size_t>(n);
    }
  }
}

}  // namespace pagewire::sendfile_server
