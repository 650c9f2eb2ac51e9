#pragma once

/// Test helpers for tests/net: loopback TCP pairs, a receiving thread that hashes what it gets
/// (SHA-256 via OpenSSL EVP), files under $TEST_TMPDIR (tests/fs/temp_files.h's helpers), and a
/// bounded loop runner.

#include <arpa/inet.h>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <pagewire/runtime/context.h>

#include "tests/fs/temp_files.h"

namespace pagewire::net::testing {

using digest = std::array<unsigned char, 32>;

class sha256 {
 public:
  sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~sha256() { EVP_MD_CTX_free(ctx_); }
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const void* p, std::size_t n) { EVP_DigestUpdate(ctx_, p, n); }
  digest final() {
    digest d{};
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx_, d.data(), &len);
    return d;
  }

 private:
  EVP_MD_CTX* ctx_;
};

inline digest hash_of(const void* p, std::size_t n) {
  sha256 h;
  h.update(p, n);
  return h.final();
}

/// SHA-256 of bytes [off, off + len) of `fd` (pread).
inline digest hash_of_file(int fd, std::uint64_t off, std::uint64_t len) {
  sha256 h;
  std::vector<char> buf(1 << 20);
  while (len > 0) {
    const ssize_t r =
        ::pread(fd, buf.data(), std::min<std::uint64_t>(len, buf.size()), static_cast<off_t>(off));
    if (r <= 0) break;
    h.update(buf.data(), static_cast<std::size_t>(r));
    off += static_cast<std::uint64_t>(r);
    len -= static_cast<std::uint64_t>(r);
  }
  return h.final();
}

using fs::testing::random_bytes;
using fs::testing::temp_dir;
using fs::testing::temp_path;

/// Writes `data` at `offset` of a new file (the rest stays a hole); returns an O_RDONLY fd.
inline int make_file(const std::vector<char>& data, std::uint64_t offset = 0,
                     std::uint64_t total_size = 0) {
  const std::string path = temp_path("net");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  ::unlink(path.c_str());
  if (total_size > 0 && ::ftruncate(fd, static_cast<off_t>(total_size)) != 0) return -1;
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t w =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (w <= 0) return -1;
    done += static_cast<std::size_t>(w);
  }
  return fd;
}

/// A connected loopback pair: `a` (the sending side, O_NONBLOCK) and `b` (blocking).
struct tcp_pair {
  int a = -1;
  int b = -1;
  tcp_pair() = default;
  // Owns its descriptors: a copy would close them twice.
  tcp_pair(tcp_pair&& o) noexcept : a(std::exchange(o.a, -1)), b(std::exchange(o.b, -1)) {}
  tcp_pair& operator=(tcp_pair&&) = delete;
  ~tcp_pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
};

inline int listen_loopback(std::uint16_t& port) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(l, 64) != 0) {
    ::close(l);
    return -1;
  }
  socklen_t len = sizeof sa;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&sa), &len);
  port = ntohs(sa.sin_port);
  return l;
}

inline int connect_loopback(std::uint16_t port, int rcvbuf = 0) {
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0) ::setsockopt(c, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  if (::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(c);
    return -1;
  }
  return c;
}

/// `b` may get a small receive buffer (set before connect, so the window is small too).
inline tcp_pair make_pair(int rcvbuf = 0) {
  tcp_pair p;
  std::uint16_t port = 0;
  int l = listen_loopback(port);
  if (l < 0) return p;
  p.b = connect_loopback(port, rcvbuf);
  p.a = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  ::close(l);
  return p;
}

/// Segments TCP socket `fd` has sent (tcpi_segs_out). glibc's struct tcp_info stops before it
/// (Linux 4.2); in the kernel's layout it follows 8 u8 fields, 24 u32 fields and 4 u64 fields:
/// byte offset 136.
inline std::uint32_t segs_out(int fd) {
  alignas(8) unsigned char buf[512] = {};
  socklen_t len = sizeof buf;
  EXPECT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_INFO, buf, &len), 0);
  EXPECT_GE(len, 140u);
  std::uint32_t v = 0;
  std::memcpy(&v, buf + 136, sizeof v);
  return v;
}

/// Reads `fd` to EOF on its own thread, hashing everything.
class sink {
 public:
  explicit sink(int fd) : thread_([this, fd] { run(fd); }) {}
  ~sink() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  digest hash() {
    join();
    return hash_;
  }
  std::uint64_t bytes() {
    join();
    return bytes_;
  }

 private:
  void run(int fd) {
    sha256 h;
    std::vector<char> buf(256 * 1024);
    for (;;) {
      const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      h.update(buf.data(), static_cast<std::size_t>(r));
      bytes_ += static_cast<std::uint64_t>(r);
    }
    hash_ = h.final();
  }
  digest hash_{};
  std::uint64_t bytes_ = 0;
  std::thread thread_;
};

/// A splice_pipe or transmit_op that records its completion: done, the error and the bytes
/// it reported.
template <class Op>
class recording : public Op {
 public:
  using Op::Op;
  bool done = false;
  std::error_code ec;
  std::uint64_t bytes = 0;

 protected:
  void on_complete(std::error_code e, std::uint64_t n) override {
    done = true;
    ec = e;
    bytes = n;
  }
};

/// Runs `ctx` one handler at a time until `done()`, `max_steps` handlers ran, or `patience`
/// passed. The time bound turns a loop that keeps running handlers without ever getting done
/// (a peer that never stops sending, a receive re-armed forever) into a failed assertion of
/// its test, not a timeout of the whole binary; a handler that never comes still blocks.
inline bool run_until(runtime::context& ctx, const std::function<bool()>& done,
                      std::size_t max_steps = 10'000'000,
                      std::chrono::steady_clock::duration patience = std::chrono::seconds(20)) {
  const auto until = std::chrono::steady_clock::now() + patience;
  for (std::size_t i = 0; i < max_steps && !done(); ++i) {
    if (ctx.run_one() == 0 && !done()) return false;
    if (std::chrono::steady_clock::now() >= until) break;
  }
  return done();
}

inline runtime::context_options backend(bool fallback) {
  runtime::context_options o;
  o.backend = fallback ? runtime::backend_kind::fallback : runtime::backend_kind::io_uring;
  o.read_environment = false;
  return o;
}

}  // namespace pagewire::net::testing
