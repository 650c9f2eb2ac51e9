#pragma once

// Stacks by name over any pair of transports: "plain", "tls", "gzip+plain", "gzip+tls",
// "zstd+tls"... One side is the TLS server, the other the client. `world` is what one test
// runs them on; `socket_world` adds what stacks over real sockets need, and tcp_pair() makes
// the sockets.

#include <arpa/inet.h>
#include <chrono>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

#include <pagewire/fs/page_cache.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>

#include "tests/filters/helpers.h"

namespace pwtest {

struct stack_env {
  fs::page_pool* pool = nullptr;
  fs::page_cache* cache = nullptr;
  std::size_t max_send = 0;
};

/// One test's context, page pool (up to 1 GiB) and page cache.
struct world {
  runtime::context ctx;
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{1} << 30}};
  fs::page_cache cache{ctx, pool};
  stack_env env() { return {&pool, &cache, 0}; }
};

/// A world for stacks over sockets: net options without header and idle timeouts (tests pace
/// themselves) and a pipe pool.
struct socket_world : world {
  pagewire::net::options opts = [] {
    pagewire::net::options o;
    o.header_timeout = std::chrono::milliseconds(0);
    o.idle_timeout = std::chrono::milliseconds(0);
    return o;
  }();
  pagewire::net::pipe_pool pipes{opts};
};

inline std::unique_ptr<filters::stream> build_stack(const std::string& spec,
                                                    std::unique_ptr<filters::stream> bottom,
                                                    bool server, const stack_env& env) {
  std::unique_ptr<filters::stream> s = std::move(bottom);
  std::error_code ec;
  if (spec.find("tls") != std::string::npos) {
    filters::tls_layer_options o;
    s = std::make_unique<filters::tls_layer>(std::move(s), server ? server_tls() : client_tls(), o,
                                             *env.pool, env.cache, ec);
    EXPECT_FALSE(ec) << ec.message();
  }
  for (auto [name, kind] :
       {std::pair{"gzip+", filters::coding::gzip}, std::pair{"zstd+", filters::coding::zstd},
        std::pair{"deflate+", filters::coding::deflate}}) {
    if (spec.rfind(name, 0) == 0) {
      filters::content_filter_options o;
      o.encode = filters::encoder_options{kind, 1};
      o.decode = filters::decoder_options{kind};
      o.decode->max_output = std::uint64_t{1} << 30;
      s = std::make_unique<filters::content_filter>(std::move(s), o, *env.pool, env.cache, ec);
      EXPECT_FALSE(ec) << ec.message();
    }
  }
  return s;
}

/// A stack spec as a test-name suffix ("gzip+tls" -> "gzip_tls"), for INSTANTIATE_TEST_SUITE_P.
inline std::string stack_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string s = info.param;
  for (char& c : s)
    if (c == '+') c = '_';
  return s;
}

/// A listening loopback socket on an ephemeral port (written to `port`).
inline int listen_loopback(int& port) {
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(l, 8), 0);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return l;
}

/// A connected loopback TCP pair: {client fd, server fd}; the caller owns both.
inline std::pair<int, int> tcp_pair() {
  int port = 0;
  const int l = listen_loopback(port);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);
  return {c, s};
}

}  // namespace pwtest
