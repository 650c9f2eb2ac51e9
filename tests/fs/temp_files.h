#pragma once

/// Test helpers: files under $TEST_TMPDIR (falls back to /tmp), removed by the fixture owner.

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fcntl.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace pagewire::fs::testing {

inline std::string temp_dir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d != nullptr ? d : "/tmp";
}

/// A unique path under temp_dir() with the given stem.
inline std::string temp_path(const std::string& stem) {
  static std::atomic<int> counter{0};
  return temp_dir() + "/" + stem + "." + std::to_string(::getpid()) + "." +
         std::to_string(counter++);
}

/// Deterministic pseudo-random bytes.
inline std::vector<char> random_bytes(std::size_t n, std::uint32_t seed) {
  std::vector<char> out(n);
  std::mt19937 rng(seed);
  for (auto& c : out)
    c = static_cast<char>(rng());
  return out;
}

/// Writes `data` to `path` (truncating); returns false on any error.
inline bool write_file(const std::string& path, const std::vector<char>& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      ::close(fd);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return ::close(fd) == 0;
}

/// pread of exactly `n` bytes at `off` (fewer at end of file).
inline std::vector<char> pread_all(int fd, std::uint64_t off, std::size_t n) {
  std::vector<char> out(n);
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out.data() + done, n - done, static_cast<off_t>(off + done));
    if (r <= 0) break;
    done += static_cast<std::size_t>(r);
  }
  out.resize(done);
  return out;
}

}  // namespace pagewire::fs::testing
