#include "apps/zcbench/source_store.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <random>
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
  std::string templ = dir_parent + "/zcbench-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    why = errno_line("mkdtemp " + templ);
    return nullptr;
  }
  s->dir_ = templ;
  register_cleanup(cleanup_kind::directory, s->dir_.c_str());
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
}

source source_store::view() const {
  source s;
  s.file_fd = fd_;
  s.total = total_;
  if (with_memory_) s.memory = window_;
  return s;
}

}  // namespace zcbench
