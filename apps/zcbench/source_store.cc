#include "apps/zcbench/source_store.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <dirent.h>
#include <fcntl.h>
#include <iterator>
#include <random>
#include <span>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/zcbench/cleanup.h"

namespace zcbench {
namespace {

// xorshift64*: cheap, and its output does not compress.
void fill_pseudo_random(std::vector<std::byte>& out) {
  std::uint64_t state = 0x9e3779b97f4a7c15ull;
  for (std::size_t i = 0; i < out.size(); i += 8) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    const std::uint64_t word = state * 0x2545f4914f6cdd1dull;
    std::memcpy(out.data() + i, &word, std::min<std::size_t>(8, out.size() - i));
  }
}

// Text-like bytes: words of HTML and JSON drawn at random (the same stream as
// tests/bench/filters_bench's window), so gzip and zstd have something to do.
void fill_text(std::vector<std::byte>& out) {
  static constexpr const char* kWords[] = {
      "<div class=\"row\">", "pagewire ", "zero-copy ", "splice ", "{\"id\": ", "12345, ",
      "\"name\": ",          "the ",      "</div>\n",   "GET / "};
  std::mt19937_64 g(5);
  for (std::size_t i = 0; i < out.size();) {
    const char* w = kWords[g() % std::size(kWords)];
    for (std::size_t k = 0; w[k] != '\0' && i < out.size(); ++k)
      out[i++] = static_cast<std::byte>(w[k]);
  }
}

std::string errno_line(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool write_all(int fd, const std::byte* data, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

constexpr const char* kPrefix = "zcbench-";
constexpr std::size_t kNameLength = 14;  // "zcbench-" and mkdtemp's six characters
// tls_credentials.cc's directory: "zcbench-tls-" and mkdtemp's six characters.
constexpr const char* kTlsPrefix = "zcbench-tls-";
constexpr std::size_t kTlsNameLength = 18;
// Older than any run's moment between mkdtemp and its flock.
constexpr std::time_t kStaleAfterSeconds = 60;

// mkdtemp's six characters: letters and digits.
bool is_temp_suffix(const std::string& name, std::size_t from) {
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(from), name.end(),
                     [](unsigned char c) { return std::isalnum(c) != 0; });
}

// The files a directory of ours holds, by its name; empty for a name zcbench does not make.
std::span<const char* const> files_of(const std::string& name) {
  static constexpr const char* kSourceFiles[] = {"source.bin"};
  static constexpr const char* kTlsFiles[] = {"key.pem", "cert.pem"};
  if (name.size() == kNameLength && name.rfind(kPrefix, 0) == 0 &&
      is_temp_suffix(name, std::strlen(kPrefix)))
    return kSourceFiles;
  if (name.size() == kTlsNameLength && name.rfind(kTlsPrefix, 0) == 0 &&
      is_temp_suffix(name, std::strlen(kTlsPrefix)))
    return kTlsFiles;
  return {};
}

// Removes the source and TLS credential directories of runs that died without cleaning up
// (SIGKILL, the OOM killer): a live run holds a flock on each from right after mkdtemp
// until it removes it, so a directory of ours that can be locked and has not changed for a
// minute has no owner left. Only this user's directories, never through a symlink.
void reap_stale_sources(const std::string& parent) {
  DIR* d = ::opendir(parent.c_str());
  if (d == nullptr) return;
  const std::time_t now = std::time(nullptr);
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const auto files = files_of(name);
    if (files.empty()) continue;
    const int fd =
        ::openat(::dirfd(d), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() &&
        now - st.st_mtime > kStaleAfterSeconds && ::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      for (const char* file : files)
        ::unlinkat(fd, file, 0);
      if (::unlinkat(::dirfd(d), name.c_str(), AT_REMOVEDIR) == 0) {
        std::fprintf(stderr, "zcbench: removed %s/%s left by an earlier run\n", parent.c_str(),
                     name.c_str());
      }
    }
    ::close(fd);
  }
  ::closedir(d);
}

}  // namespace

std::size_t window_size(std::uint64_t total, std::size_t window) {
  return static_cast<std::size_t>(std::min<std::uint64_t>(total, window));
}

std::unique_ptr<source_store> source_store::create(const std::string& dir_parent,
                                                   std::uint64_t total, std::size_t window,
                                                   bool with_memory, content kind,
                                                   std::string& why) {
  std::unique_ptr<source_store> s(new source_store);
  s->total_ = total;
  s->with_memory_ = with_memory;
  reap_stale_sources(dir_parent);
  std::string templ = dir_parent + "/" + kPrefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    why = errno_line("mkdtemp " + templ);
    return nullptr;
  }
  s->dir_ = templ;
  register_cleanup(cleanup_kind::directory, s->dir_.c_str());
  // Held until the directory is removed: a later run then knows it is not stale.
  s->lock_fd_ = ::open(s->dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (s->lock_fd_ < 0 || ::flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    why = errno_line("lock " + s->dir_);
    return nullptr;
  }
  s->file_ = s->dir_ + "/source.bin";
  register_cleanup(cleanup_kind::file, s->file_.c_str());
  s->fd_ = ::open(s->file_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (s->fd_ < 0) {
    why = errno_line("create " + s->file_);
    return nullptr;
  }
  s->window_.resize(window_size(total, window));
  if (kind == content::text) {
    fill_text(s->window_);
  } else {
    fill_pseudo_random(s->window_);
  }
  for (std::uint64_t written = 0; written < total;) {
    const auto n =
        static_cast<std::size_t>(std::min<std::uint64_t>(s->window_.size(), total - written));
    if (!write_all(s->fd_, s->window_.data(), n)) {
      why = errno_line("write " + s->file_);
      return nullptr;
    }
    written += n;
  }
  // Written back now, before any trial: left dirty, the kernel's flusher writes the file out
  // 30 s later (vm.dirty_expire_centisecs), in the middle of whichever trials run then.
  if (::fdatasync(s->fd_) != 0) {
    why = errno_line("fdatasync " + s->file_);
    return nullptr;
  }
  if (!with_memory) std::vector<std::byte>().swap(s->window_);
  return s;
}

source_store::~source_store() {
  if (fd_ >= 0) ::close(fd_);
  if (!file_.empty()) {
    ::unlink(file_.c_str());
    forget_cleanup(file_.c_str());
  }
  if (!dir_.empty()) {
    ::rmdir(dir_.c_str());
    forget_cleanup(dir_.c_str());
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

source source_store::view() const {
  source s;
  s.file_fd = fd_;
  s.total = total_;
  if (with_memory_) s.memory = window_;
  return s;
}

}  // namespace zcbench
