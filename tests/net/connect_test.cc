// net/connect.h on both backends: a connection made by async_connect_tcp carries bytes both
// ways; a refused, malformed or timed-out connect ends in its error with no descriptor left
// open; an error found at once still completes through the loop; and it works awaited.

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <pagewire/net/acceptor.h>
#include <pagewire/net/address.h>
#include <pagewire/net/connect.h>

#include "tests/net/net_testing.h"

namespace pagewire::net {
namespace {

using namespace testing;
using namespace std::chrono_literals;

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d))
      ++n;
    ::closedir(d);
  }
  return n;
}

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 5000) == 1;
}

struct outcome {
  bool done = false;
  std::error_code ec;
  int fd = -2;
};

class connect_backends : public ::testing::TestWithParam<bool> {
 protected:
  outcome connect(const char* host, std::uint16_t port, std::chrono::nanoseconds timeout = {}) {
    outcome r;
    async_connect_tcp(
        ctx_, host, port,
        [&r](std::error_code ec, int fd) {
          r.done = true;
          r.ec = ec;
          r.fd = fd;
        },
        timeout);
    EXPECT_FALSE(r.done) << "completed inside the call";
    EXPECT_TRUE(run_until(ctx_, [&] { return r.done; }));
    return r;
  }

  // The fallback opens its reactor's descriptors (epoll, eventfd, timerfd) at its first wait:
  // one refused connect first, so that counting open descriptors sees only the connect's.
  std::size_t open_fds_after_warm_up() {
    EXPECT_EQ(connect("127.0.0.1", closed_port()).ec, std::errc::connection_refused);
    return open_fds();
  }

  /// A listening socket on `host` (port 0 picks one, written back); -1 when `host` has none.
  static int listen_on(const char* host, std::uint16_t& port, int backlog = 8) {
    std::error_code ec;
    port = 0;
    return listen_tcp(host, port, false, backlog, ec);
  }

  /// A loopback port nothing listens on (it did a moment ago).
  static std::uint16_t closed_port() {
    std::uint16_t port = 0;
    const int listener = listen_on("127.0.0.1", port);
    EXPECT_GE(listener, 0);
    ::close(listener);
    return port;
  }

  runtime::context ctx_{backend(GetParam())};
};

TEST_P(connect_backends, connects_over_ipv4_and_ipv6_and_carries_bytes_both_ways) {
  for (const char* host : {"127.0.0.1", "::1"}) {
    std::uint16_t port = 0;
    const int listener = listen_on(host, port);
    if (listener < 0 && std::string(host) == "::1") continue;  // no IPv6 loopback here
    ASSERT_GE(listener, 0) << host;
    const outcome r = connect(host, port);
    ASSERT_FALSE(r.ec) << host << ": " << r.ec.message();
    ASSERT_GE(r.fd, 0);
    EXPECT_TRUE(::fcntl(r.fd, F_GETFL) & O_NONBLOCK);
    EXPECT_TRUE(::fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
    tcp_address peer;
    peer.size = sizeof peer.storage;
    ASSERT_EQ(::getpeername(r.fd, peer.data(), &peer.size), 0);
    EXPECT_EQ(peer.port(), port);
    const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(server, 0);
    ASSERT_EQ(::send(r.fd, "ping", 4, MSG_NOSIGNAL), 4);
    char buf[8] = {};
    ASSERT_EQ(::recv(server, buf, sizeof buf, 0), 4);
    EXPECT_EQ(std::string(buf, 4), "ping");
    ASSERT_EQ(::send(server, "pong", 4, MSG_NOSIGNAL), 4);
    ASSERT_TRUE(wait_readable(r.fd));
    ASSERT_EQ(::recv(r.fd, buf, sizeof buf, 0), 4);
    EXPECT_EQ(std::string(buf, 4), "pong");
    ::close(server);
    ::close(r.fd);
    ::close(listener);
  }
}

TEST_P(connect_backends, a_refused_connect_reports_econnrefused_and_leaves_no_descriptor) {
  const std::size_t before = open_fds_after_warm_up();
  const outcome r = connect("127.0.0.1", closed_port());
  EXPECT_EQ(r.ec, std::errc::connection_refused) << r.ec.message();
  EXPECT_EQ(r.fd, -1);
  EXPECT_EQ(open_fds(), before);
}

TEST_P(connect_backends, a_host_that_is_not_an_ip_literal_fails_through_the_loop) {
  const std::size_t before = open_fds_after_warm_up();
  for (const char* host : {"localhost", "", "1.2.3", "::1::"}) {
    const outcome r = connect(host, 80);
    EXPECT_EQ(r.ec, std::errc::invalid_argument) << "'" << host << "'";
    EXPECT_EQ(r.fd, -1);
  }
  EXPECT_EQ(open_fds(), before);
}

// A listener that never accepts, with its queue full: the next SYNs are dropped and a connect
// waits; the timeout ends it.
TEST_P(connect_backends, a_connect_nobody_answers_ends_at_its_timeout) {
  std::uint16_t port = 0;
  const int listener = listen_on("127.0.0.1", port, 0);
  ASSERT_GE(listener, 0);
  std::vector<int> queued;  // fill the accept queue with plain non-blocking connects
  for (int i = 0; i < 8; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    tcp_address a;
    ASSERT_FALSE(tcp_address::parse("127.0.0.1", port, a));
    ::connect(fd, a.data(), a.size);
    queued.push_back(fd);
  }
  const std::size_t before = open_fds_after_warm_up();
  const auto start = std::chrono::steady_clock::now();
  const outcome r = connect("127.0.0.1", port, 200ms);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.ec, std::errc::operation_canceled) << r.ec.message();
  EXPECT_EQ(r.fd, -1);
  EXPECT_GE(took, 150ms);
  EXPECT_EQ(open_fds(), before);
  for (int fd : queued)
    ::close(fd);
  ::close(listener);
}

TEST_P(connect_backends, works_awaited_in_a_coroutine) {
  std::uint16_t port = 0;
  const int listener = listen_on("127.0.0.1", port);
  ASSERT_GE(listener, 0);
  outcome r;
  boost::asio::co_spawn(
      ctx_.get_executor(),
      [&]() -> boost::asio::awaitable<void> {
        auto [e, fd] =
            co_await async_connect_tcp(ctx_, "127.0.0.1", port, boost::asio::use_awaitable);
        r = {true, e, fd};
      },
      boost::asio::detached);
  ASSERT_TRUE(run_until(ctx_, [&] { return r.done; }));
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_GE(r.fd, 0);
  ::close(r.fd);
  ::close(listener);
}

INSTANTIATE_TEST_SUITE_P(Both, connect_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "io_uring"; });

}  // namespace
}  // namespace pagewire::net
