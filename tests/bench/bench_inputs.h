#pragma once

/// What the benchmarks feed pagewire: text-like bytes, a throwaway TLS identity and scratch
/// files. Header-only; main thread.

#include <cstddef>
#include <cstdlib>
#include <fcntl.h>
#include <random>
#include <string>
#include <unistd.h>
#include <vector>

namespace pagewire::bench {

/// n bytes of text-like content (HTML/JSON words in a fixed pseudo-random order): gzip -6
/// shrinks it about 10x, like real markup. Deterministic (same bytes for the same n).
inline std::vector<std::byte> text_bytes(std::size_t n) {
  static const char* const words[] = {
      "<div class=\"row\">", "pagewire ", "zero-copy ", "splice ", "{\"id\": ", "12345, ",
      "\"name\": ",          "the ",      "</div>\n",   "GET / "};
  std::vector<std::byte> v(n);
  std::mt19937_64 g(5);
  for (std::size_t i = 0; i < n;) {
    const char* w = words[g() % 10];
    for (std::size_t k = 0; w[k] && i < n; ++k)
      v[i++] = static_cast<std::byte>(w[k]);
  }
  return v;
}

/// A self-signed EC P-256 certificate (CN=localhost, one day) and its key, written by the
/// `openssl` tool as $TMPDIR/STEM_cert.pem and $TMPDIR/STEM_key.pem (TMPDIR defaults to /tmp).
/// Empty names when the tool failed. The caller removes the files.
struct cert_files {
  std::string cert, key;
};
inline cert_files self_signed(const std::string& stem) {
  const char* tmp = std::getenv("TMPDIR");
  const std::string dir = tmp ? tmp : "/tmp";
  cert_files f{dir + "/" + stem + "_cert.pem", dir + "/" + stem + "_key.pem"};
  const std::string cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
      "-subj /CN=localhost -keyout " +
      f.key + " -out " + f.cert + " 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) return {};
  return f;
}

/// Writes a file of `bytes` bytes, `chunk` over and over (bytes a multiple of its size), as
/// $TMPDIR/STEM.PID (TMPDIR defaults to /tmp) and returns its path. The file is removed when
/// the process exits; a file that cannot be written aborts the benchmark.
inline std::string scratch_file(const std::string& stem, std::size_t bytes,
                                const std::vector<char>& chunk) {
  static std::vector<std::string> made;  // removed at exit
  const char* tmp = std::getenv("TMPDIR");
  std::string path =
      std::string(tmp ? tmp : "/tmp") + "/" + stem + "." + std::to_string(::getpid());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || chunk.empty() || bytes % chunk.size() != 0) std::abort();
  for (std::size_t done = 0; done < bytes; done += chunk.size()) {
    if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) std::abort();
  }
  ::close(fd);
  if (made.empty()) {
    std::atexit([] {
      for (const std::string& p : made)
        ::unlink(p.c_str());
    });
  }
  made.push_back(path);
  return path;
}

}  // namespace pagewire::bench
