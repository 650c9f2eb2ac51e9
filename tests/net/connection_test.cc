#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/recv_buffer_ring.h>
#include <pagewire/runtime/context.h>

#include "tests/net/net_testing.h"

namespace pagewire::net {
namespace {

using namespace testing;
using namespace std::chrono_literals;

struct fixture {
  explicit fixture(bool fallback) : ctx(backend(fallback)), pipes(opts) {
    opts.recv_buffers = 8;
    opts.recv_buffer_size = 4096;
    EXPECT_FALSE(opts.validate());
    std::error_code ec;
    ring = recv_buffer_ring::create(ctx, opts, 7, ec);
    EXPECT_EQ(ring == nullptr, fallback) << ec.message();
  }
  void close(connection& c) {
    bool closed = false;
    c.async_close([&](std::error_code ec) {
      EXPECT_FALSE(ec);
      closed = true;
    });
    EXPECT_TRUE(run_until(ctx, [&] { return closed; }));
  }
  options opts;
  runtime::context ctx;
  pipe_pool pipes;
  std::unique_ptr<recv_buffer_ring> ring;
};

class connection_backends : public ::testing::TestWithParam<bool> {};

TEST_P(connection_backends, receives_every_byte_as_views_until_end_of_stream) {
  fixture f(GetParam());
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  EXPECT_EQ(c.multishot(), !GetParam() && f.ctx.probe().multishot_recv);
  const auto data = random_bytes(200'000, 21);  // many more bytes than the ring holds
  std::thread writer([&] {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t w = ::send(p.b, data.data() + off, data.size() - off, 0);
      if (w <= 0) break;
      off += static_cast<std::size_t>(w);
    }
    ::shutdown(p.b, SHUT_WR);
  });
  sha256 h;
  std::uint64_t total = 0;
  bool eof = false;
  std::error_code err;
  std::function<void()> receive = [&] {
    c.async_receive([&](std::error_code ec, received r) {
      if (ec) {
        err = ec;
        return;
      }
      if (r.empty()) {
        eof = true;
        return;
      }
      h.update(r.data(), r.size());
      total += r.size();
      r.release();  // the buffer goes back to the ring
      receive();
    });
  };
  receive();
  EXPECT_TRUE(run_until(f.ctx, [&] { return eof || err; }));
  writer.join();
  EXPECT_FALSE(err) << err.message() << " arms " << c.stats().recv_arms << " enobufs "
                    << c.stats().enobufs << " receives " << c.stats().receives << " avail "
                    << (f.ring ? f.ring->available() : 0);
  EXPECT_EQ(total, data.size());
  EXPECT_EQ(h.final(), hash_of(data.data(), data.size()));
  if (f.ring) {
    EXPECT_EQ(f.ring->outstanding(), 0u);
  }
  f.close(c);
}

namespace {
int nodelay_of(int fd) {
  int v = -1;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) == 0 ? v : -1;
}
}  // namespace

TEST_P(connection_backends, sets_tcp_nodelay_on_a_tcp_socket_unless_told_not_to) {
  fixture f(GetParam());
  tcp_pair on = make_pair();
  tcp_pair off = make_pair();
  ASSERT_EQ(nodelay_of(on.a), 0);  // the kernel's default: Nagle on
  connection c_on(f.ctx, std::exchange(on.a, -1), f.opts, f.pipes, f.ring.get());
  EXPECT_EQ(nodelay_of(c_on.fd()), 1);
  options keep = f.opts;
  keep.tcp_nodelay = false;
  connection c_off(f.ctx, std::exchange(off.a, -1), keep, f.pipes, f.ring.get());
  EXPECT_EQ(nodelay_of(c_off.fd()), 0);
  f.close(c_on);
  f.close(c_off);
}

TEST_P(connection_backends, takes_a_unix_socket_where_tcp_nodelay_does_not_apply) {
  fixture f(GetParam());
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  connection c(f.ctx, sv[0], f.opts, f.pipes, f.ring.get());
  bool done = false;
  fs::chain m;
  static constexpr char kPing[] = "ping";
  m.append(fs::slice::from_static(kPing, 4));
  c.async_send(std::move(m), [&](std::error_code ec, std::uint64_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 4u);
    done = true;
  });
  EXPECT_TRUE(run_until(f.ctx, [&] { return done; }));
  char buf[8] = {};
  EXPECT_EQ(::recv(sv[1], buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string_view(buf, 4), "ping");
  f.close(c);
  ::close(sv[1]);
}

TEST_P(connection_backends, header_timeout_fails_a_receive_that_sees_no_byte) {
  fixture f(GetParam());
  f.opts.header_timeout = 50ms;
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  c.set_phase(phase::header);
  std::error_code err;
  bool done = false;
  c.async_receive([&](std::error_code ec, received) {
    err = ec;
    done = true;
  });
  EXPECT_TRUE(run_until(f.ctx, [&] { return done; }));
  EXPECT_EQ(err, std::errc::timed_out);
  EXPECT_EQ(c.stats().timeouts, 1u);
  f.close(c);  // waits for the armed receive to be cancelled before closing the fd
}

TEST_P(connection_backends, stalled_reader_trips_send_timeout_without_blocking_another) {
  fixture f(GetParam());
  f.opts.send_timeout = 200ms;
  const auto data = random_bytes(32 << 20, 22);
  const int fd = make_file(data);
  std::error_code oec;
  auto file = fs::file::adopt(fd, oec);
  ASSERT_FALSE(oec);
  tcp_pair stalled = make_pair(4096);  // the peer never reads
  tcp_pair healthy = make_pair();
  connection slow(f.ctx, std::exchange(stalled.a, -1), f.opts, f.pipes, f.ring.get());
  connection fast(f.ctx, std::exchange(healthy.a, -1), f.opts, f.pipes, f.ring.get());
  sink s(healthy.b);
  std::error_code slow_ec, fast_ec;
  bool slow_done = false, fast_done = false, fast_first = false;
  fs::chain big;
  big.append(fs::file_range(file, 0, data.size()));
  slow.async_send(std::move(big), [&](std::error_code ec, std::uint64_t) {
    slow_ec = ec;
    slow_done = true;
  });
  fs::chain small;
  small.append(fs::file_range(file, 0, 1 << 20));
  fast.async_send(std::move(small), [&](std::error_code ec, std::uint64_t n) {
    fast_ec = ec;
    fast_done = true;
    fast_first = !slow_done;
    EXPECT_EQ(n, 1u << 20);
  });
  EXPECT_TRUE(run_until(f.ctx, [&] { return slow_done && fast_done; }));
  EXPECT_TRUE(fast_first);
  EXPECT_FALSE(fast_ec);
  EXPECT_EQ(slow_ec, std::errc::timed_out);
  f.close(fast);
  EXPECT_EQ(s.bytes(), 1u << 20);
  EXPECT_EQ(s.hash(), hash_of(data.data(), 1 << 20));
  f.close(slow);
}

TEST_P(connection_backends, close_cancels_pending_operations_before_closing_the_socket) {
  fixture f(GetParam());
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  c.set_phase(phase::body);  // no receive timeout
  std::error_code recv_ec;
  bool recv_done = false, closed = false;
  c.async_receive([&](std::error_code ec, received) {
    recv_ec = ec;
    recv_done = true;
  });
  f.ctx.poll();
  c.async_close([&](std::error_code ec) {
    EXPECT_FALSE(ec);
    EXPECT_TRUE(recv_done);  // the receive's handler ran first
    closed = true;
  });
  EXPECT_TRUE(run_until(f.ctx, [&] { return closed; }));
  EXPECT_EQ(recv_ec, std::errc::operation_canceled);
  EXPECT_EQ(f.ctx.in_flight(), 0u);
  char b;
  EXPECT_EQ(::recv(p.b, &b, 1, 0), 0);  // the peer sees the shutdown
}

INSTANTIATE_TEST_SUITE_P(backends, connection_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "epoll" : "io_uring"; });

}  // namespace
}  // namespace pagewire::net
