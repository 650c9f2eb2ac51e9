#pragma once

// Shared test helpers for tests/filters: a context + pool per test, random and text-like
// data, chains from/to bytes, stacks built by name, and a self-signed certificate made with
// the openssl CLI in $TEST_TMPDIR.

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/memory_transport.h>
#include <pagewire/filters/stream.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>

namespace pwtest {

namespace asio = boost::asio;
namespace filters = pagewire::filters;
namespace fs = pagewire::fs;
namespace runtime = pagewire::runtime;

inline std::string tmpdir() {
  const char* d = std::getenv("TEST_TMPDIR");
  return d ? d : "/tmp";
}

/// Pseudo-random bytes (incompressible).
inline std::vector<std::byte> random_bytes(std::size_t n, std::uint64_t seed = 7) {
  std::vector<std::byte> v(n);
  std::mt19937_64 g(seed);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t x = g();
    std::memcpy(v.data() + i, &x, 8);
  }
  for (; i < n; ++i)
    v[i] = static_cast<std::byte>(g());
  return v;
}

/// Text-like bytes (compressible, not trivially).
inline std::vector<std::byte> text_bytes(std::size_t n, std::uint64_t seed = 11) {
  static const char* words[] = {"pagewire ", "splice ",    "kiobuf ", "chain ", "the ",
                                "of ",       "zero-copy ", "page ",   "ring\n", "GET / "};
  std::vector<std::byte> v(n);
  std::mt19937_64 g(seed);
  std::size_t i = 0;
  while (i < n) {
    const char* w = words[g() % 10];
    for (std::size_t k = 0; w[k] && i < n; ++k)
      v[i++] = static_cast<std::byte>(w[k]);
  }
  return v;
}

/// Bytes copied into pool pages, one slice per page (as a producer would build them).
inline fs::chain to_chain(fs::page_pool& pool, const std::vector<std::byte>& v) {
  fs::chain c;
  for (std::size_t off = 0; off < v.size(); off += fs::kPageSize) {
    const std::size_t n = std::min(fs::kPageSize, v.size() - off);
    fs::page_ref p = pool.allocate();
    std::memcpy(p.data(), v.data() + off, n);
    c.append(fs::slice(p, 0, n));
  }
  return c;
}

inline std::vector<std::byte> to_bytes(const fs::chain& c) {
  std::vector<std::byte> v;
  v.reserve(c.size());
  for (const fs::segment& s : c.segments()) {
    auto b = std::get<fs::slice>(s).bytes();
    v.insert(v.end(), b.begin(), b.end());
  }
  return v;
}

inline void write_file(const std::string& path, const std::vector<std::byte>& v) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  if (!v.empty()) {
    ASSERT_EQ(std::fwrite(v.data(), 1, v.size(), f), v.size());
  }
  std::fclose(f);
}

inline std::vector<std::byte> read_file(const std::string& path) {
  std::vector<std::byte> v;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return v;
  std::byte buf[65536];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;)
    v.insert(v.end(), buf, buf + n);
  std::fclose(f);
  return v;
}

/// A self-signed P-256 certificate for CN=localhost, made once per test binary.
struct cert_files {
  std::string cert, key;
};
inline const cert_files& self_signed() {
  static const cert_files c = [] {
    cert_files f{tmpdir() + "/cert.pem", tmpdir() + "/key.pem"};
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout " +
        f.key + " -out " + f.cert + " 2>/dev/null";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    return f;
  }();
  return c;
}

/// `tickets` false: no TLS 1.3 session tickets after the handshake (the server's first records
/// are then the application's).
inline std::shared_ptr<filters::tls_context> server_tls(const std::string& ciphers = "",
                                                        bool tickets = true) {
  filters::tls_options o;
  o.role = filters::tls_role::server;
  o.cert_file = self_signed().cert;
  o.key_file = self_signed().key;
  o.ciphersuites = ciphers;
  if (!tickets) o.session_tickets = 0;
  std::error_code ec;
  auto c = filters::tls_context::create(o, ec);
  EXPECT_FALSE(ec) << ec.message();
  return c;
}

inline std::shared_ptr<filters::tls_context> client_tls(int max_version = 13) {
  filters::tls_options o;
  o.role = filters::tls_role::client;
  o.ca_file = self_signed().cert;
  o.server_name = "localhost";
  o.max_version = max_version;
  std::error_code ec;
  auto c = filters::tls_context::create(o, ec);
  EXPECT_FALSE(ec) << ec.message();
  return c;
}

/// Writes `data` in `pieces` writes (the last ends the message), then shuts down.
inline asio::awaitable<std::error_code> send_all(filters::stream& s, fs::chain data,
                                                 std::size_t pieces = 1) {
  const std::uint64_t total = data.size();
  const std::uint64_t step = pieces > 1 ? total / pieces + 1 : total;
  for (std::size_t i = 0; i < pieces || !data.empty(); ++i) {
    fs::chain part = data.split(step);
    const std::uint64_t n = part.size();
    const auto flags =
        data.empty() ? filters::write_flags::end_of_message : filters::write_flags::more;
    auto [ec, bytes] = co_await s.write(std::move(part), flags, asio::use_awaitable);
    if (ec) co_return ec;
    EXPECT_EQ(bytes, n);  // each layer reported the application's own bytes
    if (data.empty()) break;
  }
  std::error_code ec = co_await s.shutdown(asio::use_awaitable);
  co_return ec;
}

/// Reads until the end (errc::eof); returns the first other error.
inline asio::awaitable<std::error_code> recv_all(filters::stream& s, std::vector<std::byte>& out,
                                                 std::size_t max_reads = 1u << 22) {
  for (std::size_t i = 0; i < max_reads; ++i) {
    auto [ec, c] = co_await s.read(asio::use_awaitable);
    if (ec == filters::errc::eof) co_return std::error_code();
    if (ec) co_return ec;
    const auto b = to_bytes(c);
    out.insert(out.end(), b.begin(), b.end());
  }
  co_return std::make_error_code(std::errc::result_out_of_range);
}

}  // namespace pwtest
