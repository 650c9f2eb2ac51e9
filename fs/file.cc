#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pagewire/fs/file.h>

namespace pagewire::fs {
namespace {

file_version version_of(const struct stat& st) {
  file_version v;
  v.size = static_cast<std::uint64_t>(st.st_size);
  v.mtime_ns = std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  v.ctime_ns = std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  return v;
}

}  // namespace

file::~file() {
  if (fd_ >= 0) ::close(fd_);
}

bool file::regular() const noexcept {
  return S_ISREG(mode_);
}

std::shared_ptr<const file> file::adopt(int fd, std::error_code& ec) {
  ec.clear();
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ec.assign(errno, std::system_category());
    ::close(fd);
    return nullptr;
  }
  std::shared_ptr<file> f(new file());
  f->fd_ = fd;
  f->dev_ = st.st_dev;
  f->ino_ = st.st_ino;
  f->mode_ = st.st_mode;
  f->version_ = version_of(st);
  return f;
}

std::shared_ptr<const file> file::open(const char* path, std::error_code& ec) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    ec.assign(errno, std::system_category());
    return nullptr;
  }
  return adopt(fd, ec);
}

file_version file::current_version(std::error_code& ec) const {
  ec.clear();
  struct stat st;
  if (::fstat(fd_, &st) != 0) {
    ec.assign(errno, std::system_category());
    return {};
  }
  return version_of(st);
}

}  // namespace pagewire::fs
