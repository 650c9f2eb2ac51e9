#include "apps/zcbench/pipe.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>
#include <utility>

namespace zcbench {

pipe_pair::pipe_pair(pipe_pair&& other) noexcept
    : fds_{std::exchange(other.fds_[0], -1), std::exchange(other.fds_[1], -1)},
      capacity_(std::exchange(other.capacity_, 0)) {}

pipe_pair& pipe_pair::operator=(pipe_pair&& other) noexcept {
  if (this != &other) {
    reset();
    fds_[0] = std::exchange(other.fds_[0], -1);
    fds_[1] = std::exchange(other.fds_[1], -1);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

pipe_pair::~pipe_pair() {
  reset();
}

void pipe_pair::reset() {
  for (int& fd : fds_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  capacity_ = 0;
}

std::size_t pipe_max_size() {
  std::ifstream in("/proc/sys/fs/pipe-max-size");
  std::size_t value = 0;
  if (in >> value && value > 0) return value;
  return std::size_t{1} << 20;
}

pipe_pair pipe_pair::open(std::size_t want, std::error_code& ec) {
  pipe_pair p;
  if (::pipe2(p.fds_, O_CLOEXEC) != 0) {
    ec.assign(errno, std::system_category());
    return p;
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const std::size_t asked = std::clamp(want, page, std::max(page, pipe_max_size()));
  // F_SETPIPE_SZ rounds up to a power-of-two number of pages and returns the size.
  int granted = ::fcntl(p.fds_[1], F_SETPIPE_SZ, static_cast<int>(asked));
  if (granted < 0) granted = ::fcntl(p.fds_[1], F_GETPIPE_SZ);
  if (granted < 0) {
    ec.assign(errno, std::system_category());
    p.reset();
    return p;
  }
  p.capacity_ = static_cast<std::size_t>(granted);
  ec.clear();
  return p;
}

}  // namespace zcbench
