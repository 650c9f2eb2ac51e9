#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/recv_buffer_ring.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/timer.h>

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
/// An IPPROTO_TCP option's value on `fd`, or -1 when getsockopt fails.
int tcp_option_of(int fd, int option) {
  int v = -1;
  socklen_t len = sizeof v;
  return ::getsockopt(fd, IPPROTO_TCP, option, &v, &len) == 0 ? v : -1;
}
int nodelay_of(int fd) {
  return tcp_option_of(fd, TCP_NODELAY);
}
int notsent_lowat_of(int fd) {
  return tcp_option_of(fd, TCP_NOTSENT_LOWAT);
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

TEST_P(connection_backends, sets_tcp_notsent_lowat_only_when_asked) {
  fixture f(GetParam());
  tcp_pair dflt = make_pair();
  tcp_pair set = make_pair();
  connection c_dflt(f.ctx, std::exchange(dflt.a, -1), f.opts, f.pipes, f.ring.get());
  EXPECT_EQ(notsent_lowat_of(c_dflt.fd()), 0);  // 0: the socket follows the sysctl
  options lowat = f.opts;
  lowat.notsent_lowat = 16384;
  ASSERT_FALSE(lowat.validate());
  connection c_set(f.ctx, std::exchange(set.a, -1), lowat, f.pipes, f.ring.get());
  EXPECT_EQ(notsent_lowat_of(c_set.fd()), 16384);
  f.close(c_dflt);
  f.close(c_set);
  lowat.notsent_lowat = std::size_t{1} << 31;
  EXPECT_EQ(lowat.validate(), std::errc::invalid_argument);
}

// The mark makes the socket take a few KiB per call and wake transmit again and again: a
// head, a range under sendfile_below_bytes (sendfile) and one above it (the pipe) still
// arrive whole and in order.
TEST_P(connection_backends, sends_every_byte_of_a_message_under_a_small_notsent_lowat) {
  fixture f(GetParam());
  f.opts.notsent_lowat = 4096;
  const auto data = random_bytes(4 << 20, 24);
  const int fd = make_file(data);
  std::error_code oec;
  auto file = fs::file::adopt(fd, oec);
  ASSERT_FALSE(oec);
  static constexpr char kHead[] = "HTTP/1.1 200 OK\r\n\r\n";
  constexpr std::size_t kHeadLen = sizeof kHead - 1;
  constexpr std::uint64_t kSmall = 64 << 10;
  tcp_pair p = make_pair();  // a reader that keeps up: the mark, not the window, cuts sends
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  ASSERT_EQ(notsent_lowat_of(c.fd()), 4096);
  sink s(p.b);
  fs::chain m;
  m.append(fs::slice::from_static(kHead, kHeadLen));
  m.append(fs::file_range(file, kSmall, kSmall));  // not adjacent to the next: no merge
  m.append(fs::file_range(file, 0, data.size()));
  ASSERT_EQ(m.segment_count(), 3u);
  const std::uint64_t total = kHeadLen + kSmall + data.size();
  bool sent = false;
  c.async_send(std::move(m), [&](std::error_code ec, std::uint64_t n) {
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(n, total);
    sent = true;
  });
  ASSERT_TRUE(run_until(f.ctx, [&] { return sent; }));
  f.close(c);
  sha256 h;
  h.update(kHead, kHeadLen);
  h.update(data.data() + kSmall, kSmall);
  h.update(data.data(), data.size());
  EXPECT_EQ(s.bytes(), total);
  EXPECT_EQ(s.hash(), h.final());
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

// A byte every 40 ms keeps each receive inside the 200 ms header timeout; the receive
// deadline still ends the wait as a whole, and only a receive pending at it.
TEST_P(connection_backends, receive_deadline_ends_a_wait_that_bytes_keep_alive) {
  fixture f(GetParam());
  f.opts.header_timeout = 200ms;
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  c.set_phase(phase::header);
  std::atomic<bool> stop{false};
  std::thread dribbler([&] {  // for 3 s at most: without the deadline, 200 ms after that
    for (int i = 0; i < 75 && !stop && ::send(p.b, "x", 1, MSG_NOSIGNAL) == 1; ++i)
      std::this_thread::sleep_for(40ms);
  });
  const auto start = std::chrono::steady_clock::now();
  c.set_receive_deadline(start + 500ms);
  std::error_code err;
  std::size_t bytes = 0;
  bool done = false;
  std::function<void()> next = [&] {
    c.async_receive([&](std::error_code ec, received r) {
      if (ec) {
        err = ec;
        done = true;
        return;
      }
      bytes += r.size();
      next();
    });
  };
  next();
  EXPECT_TRUE(run_until(f.ctx, [&] { return done; }));
  const auto took = std::chrono::steady_clock::now() - start;
  stop = true;
  dribbler.join();
  EXPECT_EQ(err, std::errc::timed_out);
  EXPECT_GE(took, 450ms);
  EXPECT_LT(took, 2s);
  EXPECT_GE(bytes, 5u);  // the bytes came, and each receive finished in time
  c.set_receive_deadline(std::chrono::steady_clock::time_point::max());
  bool got = false;  // with the deadline lifted, a byte is a receive again
  ASSERT_EQ(::send(p.b, "y", 1, MSG_NOSIGNAL), 1);
  c.async_receive([&](std::error_code ec, received) {
    EXPECT_FALSE(ec);
    got = true;
  });
  EXPECT_TRUE(run_until(f.ctx, [&] { return got; }));
  f.close(c);
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

// ---- lingering close ----------------------------------------------------------------------

// The far end, on its own thread: sends `junk`, waits, reads to our FIN (hashing it), then
// sends up to `more` bytes until its socket refuses them (ours was closed). Every blocking
// call gives up after kStall and the sending after kSendFor, so a socket of ours that is never
// released fails the test (`stalled`) instead of hanging it.
struct peer {
  static constexpr auto kStall = 10s;
  static constexpr auto kSendFor = 20s;
  peer(int fd, std::size_t junk, std::chrono::milliseconds wait, std::size_t more = 0)
      : fd(fd), thread([=, this] { run(junk, wait, more); }) {}
  ~peer() { join(); }
  void join() {
    if (thread.joinable()) thread.join();
  }
  void run(std::size_t junk, std::chrono::milliseconds wait, std::size_t more) {
    const timeval tv{std::chrono::duration_cast<std::chrono::seconds>(kStall).count(), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const std::string bytes(std::max<std::size_t>(junk, 4096), 'j');
    if (junk > 0) ::send(fd, bytes.data(), junk, MSG_NOSIGNAL);
    std::this_thread::sleep_for(wait);
    sha256 h;
    std::vector<char> buf(64 << 10);
    for (;;) {
      const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r < 0) (errno == EAGAIN ? stalled : reset) = true;
      if (r <= 0) break;
      h.update(buf.data(), static_cast<std::size_t>(r));
      got += static_cast<std::uint64_t>(r);
    }
    hash = h.final();
    const auto until = std::chrono::steady_clock::now() + kSendFor;
    for (std::size_t sent = 0; sent < more;) {
      if (std::chrono::steady_clock::now() >= until) {
        stalled = true;
        break;
      }
      const ssize_t w = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (w < 0 && errno == EAGAIN) stalled = true;
      if (w <= 0) break;
      sent += static_cast<std::size_t>(w);
    }
  }
  int fd;
  std::uint64_t got = 0;
  bool reset = false;
  bool stalled = false;  // a recv or send waited kStall, or the sending ran kSendFor
  digest hash{};
  std::thread thread;
};

// The peer has sent input we never read and reads our response slowly: a plain close would
// reset the connection and destroy the part still queued; the lingering close delivers it all,
// then a FIN, and closes once the peer closes too.
TEST_P(connection_backends, lingering_close_delivers_every_byte_to_a_peer_still_sending) {
  fixture f(GetParam());
  tcp_pair p = make_pair(16384);
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  const auto data = random_bytes(4 << 20, 23);
  peer b(p.b, 64 << 10, 300ms);
  std::this_thread::sleep_for(50ms);  // the junk is in our socket by now
  bool sent = false, closed = false;
  c.async_send(fs::chain(fs::slice::from_static(data.data(), data.size())),
               [&](std::error_code ec, std::uint64_t n) {
                 EXPECT_FALSE(ec);
                 EXPECT_EQ(n, data.size());
                 sent = true;
               });
  ASSERT_TRUE(run_until(f.ctx, [&] { return sent; }));
  c.async_lingering_close(linger_when::input_waiting, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    closed = true;
  });
  EXPECT_TRUE(c.lingering());
  b.join();  // it read to our FIN: the kernel delivers the queued bytes, the loop need not run
  EXPECT_FALSE(closed);
  EXPECT_FALSE(b.reset);
  EXPECT_FALSE(b.stalled);
  EXPECT_EQ(b.got, data.size());
  EXPECT_EQ(b.hash, hash_of(data.data(), data.size()));
  ::shutdown(p.b, SHUT_WR);  // the peer's end: the lingering stops
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_until(f.ctx, [&] { return closed; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(c.stats().lingered, 1u);
  EXPECT_EQ(c.stats().lingered_bytes, 64u << 10);
}

TEST_P(connection_backends, lingering_close_with_no_input_waiting_closes_at_once) {
  fixture f(GetParam());
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  bool closed = false;
  c.async_lingering_close(linger_when::input_waiting, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    closed = true;
  });
  EXPECT_FALSE(c.lingering());
  ASSERT_TRUE(run_until(f.ctx, [&] { return closed; }));
  EXPECT_EQ(c.stats().lingered, 0u);
  char ch;
  EXPECT_EQ(::recv(p.b, &ch, 1, 0), 0);
}

// The peer's request was refused at its first bytes: the rest is still on its way when we close.
// `always` lingers with nothing waiting yet, so those bytes meet a socket that drops them, not
// one that answers with a reset (which would also destroy the response still in flight).
TEST_P(connection_backends, lingering_close_always_drops_input_that_arrives_after_it) {
  fixture f(GetParam());
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  static constexpr std::string_view kAnswer = "HTTP/1.1 400 Bad Request\r\n\r\n";
  bool sent = false, closed = false;
  c.async_send(fs::chain(fs::slice::from_static(kAnswer.data(), kAnswer.size())),
               [&](std::error_code ec, std::uint64_t) {
                 EXPECT_FALSE(ec);
                 sent = true;
               });
  ASSERT_TRUE(run_until(f.ctx, [&] { return sent; }));
  c.async_lingering_close(linger_when::always, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    closed = true;
  });
  EXPECT_TRUE(c.lingering());
  // The peer's late bytes, then its end: both are taken without a reset.
  std::thread late([&] {
    std::this_thread::sleep_for(50ms);
    const std::string rest(8192, 'h');
    EXPECT_EQ(::send(p.b, rest.data(), rest.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(rest.size()));
    std::this_thread::sleep_for(50ms);  // our lingering receive has dropped them by now
    EXPECT_EQ(::shutdown(p.b, SHUT_WR), 0) << std::strerror(errno);
  });
  ASSERT_TRUE(run_until(f.ctx, [&] { return closed; }));
  late.join();
  std::string got(64, '\0');
  EXPECT_EQ(::recv(p.b, got.data(), got.size(), 0), static_cast<ssize_t>(kAnswer.size()));
  EXPECT_EQ(::recv(p.b, got.data(), got.size(), 0), 0) << std::strerror(errno);  // FIN, not RST
  EXPECT_EQ(c.stats().lingered, 1u);
  EXPECT_EQ(c.stats().lingered_bytes, 8192u);
}

// Starts a lingering close that must linger (input is waiting) and runs it to its end;
// returns how long it took.
std::chrono::steady_clock::duration linger_to_the_end(fixture& f, connection& c) {
  std::this_thread::sleep_for(50ms);  // the peer's first bytes are in our socket by now
  bool closed = false;
  const auto start = std::chrono::steady_clock::now();
  c.async_lingering_close(linger_when::input_waiting, [&](std::error_code) { closed = true; });
  EXPECT_TRUE(c.lingering());
  EXPECT_TRUE(run_until(f.ctx, [&] { return closed; }));
  return std::chrono::steady_clock::now() - start;
}

TEST_P(connection_backends, lingering_ends_at_linger_time_when_the_peer_never_stops) {
  fixture f(GetParam());
  f.opts.linger_time = 300ms;
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  peer b(p.b, 4096, 0ms, std::size_t{1} << 40);  // reads to our FIN, then sends until refused
  const auto took = linger_to_the_end(f, c);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 5s);
  EXPECT_GT(c.stats().lingered_bytes, 4096u);
  b.join();  // its sends fail once the socket is closed
  EXPECT_FALSE(b.stalled) << "the peer's sends were never refused: our socket outlived close";
}

TEST_P(connection_backends, lingering_ends_at_linger_timeout_when_the_peer_goes_quiet) {
  fixture f(GetParam());
  f.opts.linger_timeout = 200ms;
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  ASSERT_EQ(::send(p.b, "abc", 3, 0), 3);  // then nothing, and no end of stream
  const auto took = linger_to_the_end(f, c);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 5s);
  EXPECT_EQ(c.stats().lingered_bytes, 3u);
}

TEST_P(connection_backends, async_close_cuts_a_lingering_close_short) {
  fixture f(GetParam());
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  peer b(p.b, 4096, 0ms, std::size_t{1} << 40);  // never stops sending
  std::this_thread::sleep_for(50ms);
  bool lingered_done = false, cut_done = false;
  std::error_code cut_ec;
  c.async_lingering_close(linger_when::input_waiting, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    lingered_done = true;
  });
  ASSERT_TRUE(c.lingering());
  run_until(
      f.ctx, [] { return false; }, 200);  // a few rounds of dropping input
  const auto start = std::chrono::steady_clock::now();
  c.async_close([&](std::error_code ec) {
    cut_ec = ec;
    cut_done = true;
  });
  ASSERT_TRUE(run_until(f.ctx, [&] { return lingered_done && cut_done; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);  // not the 30 s linger_time
  EXPECT_EQ(cut_ec, std::errc::operation_in_progress);
  b.join();  // its sends fail once the socket is closed
  EXPECT_FALSE(b.stalled) << "the peer's sends were never refused: our socket outlived close";
}

// io_uring only (the fallback has no buffer ring): another connection holds every ring buffer,
// so the lingering receive waits for one instead of being in flight; the cut still ends it
// now, not at linger_timeout.
TEST(connection_ring, async_close_cuts_short_a_lingering_close_waiting_for_a_ring_buffer) {
  fixture f(false);
  ASSERT_NE(f.ring, nullptr);
  tcp_pair hog_pair = make_pair();
  connection hog(f.ctx, std::exchange(hog_pair.a, -1), f.opts, f.pipes, f.ring.get());
  const std::string fill(f.opts.recv_buffers * f.opts.recv_buffer_size, 'h');
  ASSERT_EQ(::send(hog_pair.b, fill.data(), fill.size(), 0), static_cast<ssize_t>(fill.size()));
  std::vector<received> held;  // kept: the ring's buffers stay out
  while (f.ring->available() > 0) {
    bool got = false;
    hog.async_receive([&](std::error_code ec, received r) {
      ASSERT_FALSE(ec);
      held.push_back(std::move(r));
      got = true;
    });
    ASSERT_TRUE(run_until(f.ctx, [&] { return got; }));
  }
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  ASSERT_EQ(::send(p.b, "abc", 3, 0), 3);
  std::this_thread::sleep_for(50ms);
  bool lingered_done = false, cut_done = false;
  c.async_lingering_close(linger_when::input_waiting, [&](std::error_code ec) {
    EXPECT_FALSE(ec);
    lingered_done = true;
  });
  ASSERT_TRUE(c.lingering());  // and its receive waits for a ring buffer
  const auto start = std::chrono::steady_clock::now();
  c.async_close([&](std::error_code) { cut_done = true; });
  ASSERT_TRUE(run_until(f.ctx, [&] { return lingered_done && cut_done; }));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);  // linger_timeout is 5 s
  held.clear();
  f.close(hog);
}

// Fills every buffer of f's ring through a connection of its own; the views come back in
// `held`, so the ring stays empty until the test gives one back.
std::unique_ptr<connection> hog_every_ring_buffer(fixture& f, tcp_pair& hog_pair,
                                                  std::vector<received>& held) {
  auto hog = std::make_unique<connection>(f.ctx, std::exchange(hog_pair.a, -1), f.opts, f.pipes,
                                          f.ring.get());
  const std::string fill(f.opts.recv_buffers * f.opts.recv_buffer_size, 'h');
  EXPECT_EQ(::send(hog_pair.b, fill.data(), fill.size(), 0), static_cast<ssize_t>(fill.size()));
  while (f.ring->available() > 0) {
    bool got = false;
    hog->async_receive([&](std::error_code ec, received r) {
      EXPECT_FALSE(ec);
      held.push_back(std::move(r));
      got = true;
    });
    EXPECT_TRUE(run_until(f.ctx, [&] { return got; }));
  }
  return hog;
}

// Runs f's loop without blocking until `done()` or `limit` passed.
bool poll_until(fixture& f, const std::function<bool()>& done, std::chrono::milliseconds limit) {
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < give_up) {
    f.ctx.poll();
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

// Two receives wait for a ring buffer; the first times out (header_timeout) and its caller
// does not close at once. The buffer given back next belongs to the receive still waiting: a
// waiter whose receive has ended must not swallow the wake-up.
TEST(connection_ring, a_buffer_given_back_wakes_a_waiting_receive_after_another_timed_out) {
  fixture f(false);
  ASSERT_NE(f.ring, nullptr);
  f.opts.header_timeout = 50ms;
  tcp_pair hog_pair = make_pair();
  std::vector<received> held;
  auto hog = hog_every_ring_buffer(f, hog_pair, held);
  ASSERT_EQ(f.ring->available(), 0u);
  tcp_pair pa = make_pair(), pb = make_pair();
  connection a(f.ctx, std::exchange(pa.a, -1), f.opts, f.pipes, f.ring.get());
  connection b(f.ctx, std::exchange(pb.a, -1), f.opts, f.pipes, f.ring.get());
  a.set_phase(phase::header);  // times out at 50 ms
  b.set_phase(phase::body);    // no receive timeout
  std::error_code a_ec, b_ec;
  bool a_done = false, b_done = false;
  std::string b_got;
  a.async_receive([&](std::error_code ec, received) {
    a_ec = ec;
    a_done = true;
  });
  b.async_receive([&](std::error_code ec, received r) {
    b_ec = ec;
    b_got.assign(reinterpret_cast<const char*>(r.data()), r.size());
    b_done = true;
  });
  ASSERT_TRUE(run_until(f.ctx, [&] { return a_done; }));
  EXPECT_EQ(a_ec, std::errc::timed_out);
  EXPECT_FALSE(b_done);
  ASSERT_EQ(::send(pb.b, "xyz", 3, 0), 3);
  held.pop_back();  // one buffer back: b's receive can run now
  EXPECT_TRUE(poll_until(
      f, [&] { return b_done; }, 2000ms))
      << "b still waits for a buffer";
  EXPECT_FALSE(b_ec) << b_ec.message();
  EXPECT_EQ(b_got, "xyz");
  held.clear();
  f.close(a);
  f.close(b);
  f.close(*hog);
}

// The two tests below, timed from their start: the receive's watchdog (or deadline) is due at
// kQueuedDue; a timer due at kQueuedBefore starts the receive under test; the test sleeps until
// kQueuedAfter, so both are due when the loop runs again and complete in one round, the timer
// first. The setup has until kQueuedBefore, a margin for loaded sanitizer runs.
constexpr auto kQueuedBefore = 600ms;
constexpr auto kQueuedDue = 800ms;
constexpr auto kQueuedAfter = 1000ms;

// `c` receives "a" from the peer; then "b" arrives with nobody receiving and is queued.
void receive_a_then_queue_b(fixture& f, connection& c, tcp_pair& p) {
  bool first = false;
  c.async_receive([&](std::error_code ec, received) {
    EXPECT_FALSE(ec);
    first = true;
  });
  ASSERT_EQ(::send(p.b, "a", 1, 0), 1);
  ASSERT_TRUE(run_until(f.ctx, [&] { return first; }));
  ASSERT_EQ(::send(p.b, "b", 1, 0), 1);
  ASSERT_TRUE(poll_until(
      f, [&] { return c.stats().receives == 2; }, 2000ms));
}

// A receive started while a block is already queued completes with that block through the
// task queue. The header timeout armed for the receive before it must not fail this one in
// between: its data is here.
TEST(connection_ring, a_receive_of_a_queued_block_does_not_time_out_before_its_delivery) {
  fixture f(false);
  ASSERT_NE(f.ring, nullptr);
  f.opts.header_timeout = kQueuedDue;
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  c.set_phase(phase::header);
  const auto start = std::chrono::steady_clock::now();
  // The first receive arms the watchdog for start + kQueuedDue.
  ASSERT_NO_FATAL_FAILURE(receive_a_then_queue_b(f, c, p));
  // The next receive starts from a timer that completes just before the watchdog's, in the
  // same round of the loop (both expired while the loop was not running).
  std::error_code ec2;
  bool second = false;
  std::string got;
  runtime::timer before_watchdog(f.ctx);
  before_watchdog.expires_at(start + kQueuedBefore);
  before_watchdog.async_wait([&](std::error_code) {
    c.async_receive([&](std::error_code ec, received r) {
      ec2 = ec;
      got.assign(reinterpret_cast<const char*>(r.data()), r.size());
      second = true;
      f.ctx.stop();
    });
  });
  f.ctx.poll();  // its SQE goes to the kernel now, so it expires (and completes) first
  ASSERT_LT(std::chrono::steady_clock::now(), start + kQueuedBefore);
  std::this_thread::sleep_until(start + kQueuedAfter);
  f.ctx.run();
  f.ctx.restart();
  ASSERT_TRUE(second);
  EXPECT_FALSE(ec2) << ec2.message();
  EXPECT_EQ(got, "b");
  EXPECT_EQ(c.stats().timeouts, 0u);
  f.close(c);
}

// The receive deadline passes while a started receive waits for the delivery of a block that is
// queued already: that receive fails (ETIMEDOUT), and its handler starts the next one, which
// takes the block. Work queued on the loop meanwhile still runs, once.
TEST(connection_ring, a_receive_started_from_a_deadline_timeout_loses_no_queued_task) {
  fixture f(false);
  ASSERT_NE(f.ring, nullptr);
  tcp_pair p = make_pair();
  connection c(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
  c.set_phase(phase::body);  // only the deadline applies
  const auto start = std::chrono::steady_clock::now();
  c.set_receive_deadline(start + kQueuedDue);
  ASSERT_NO_FATAL_FAILURE(receive_a_then_queue_b(f, c, p));
  std::error_code ec2, ec3;
  int posted_runs = 0;
  bool third = false;
  std::string got;
  auto maybe_stop = [&] {
    if (third && posted_runs > 0) f.ctx.stop();
  };
  runtime::timer before_deadline(f.ctx);  // completes just before the watchdog, in one round
  before_deadline.expires_at(start + kQueuedBefore);
  before_deadline.async_wait([&](std::error_code) {
    c.async_receive([&](std::error_code ec, received) {
      ec2 = ec;
      f.ctx.post([&] {
        ++posted_runs;
        maybe_stop();
      });
      c.async_receive([&](std::error_code e, received r) {
        ec3 = e;
        got.assign(reinterpret_cast<const char*>(r.data()), r.size());
        third = true;
        maybe_stop();
      });
    });
  });
  f.ctx.poll();  // its SQE goes to the kernel now, so it expires (and completes) first
  ASSERT_LT(std::chrono::steady_clock::now(), start + kQueuedBefore);
  std::this_thread::sleep_until(start + kQueuedAfter);
  std::atomic<bool> finished{false};
  std::thread guard([&] {  // a lost task leaves the loop spinning: stop it from outside
    const auto give_up = std::chrono::steady_clock::now() + 3s;
    while (!finished && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    f.ctx.stop();
  });
  f.ctx.run();
  finished = true;
  guard.join();
  f.ctx.restart();
  EXPECT_EQ(ec2, std::errc::timed_out);  // the deadline had passed: documented
  ASSERT_TRUE(third);
  EXPECT_FALSE(ec3) << ec3.message();
  EXPECT_EQ(got, "b");
  EXPECT_EQ(posted_runs, 1) << "a task queued on the loop was lost";
  c.set_receive_deadline(std::chrono::steady_clock::time_point::max());
  f.close(c);
}

// A zero-copy send of 1 MiB from registered pages that the peer (p.b, a 16 KiB window) does not
// read: it fills the window and the send buffer and then waits for room. For the SEND_ZC tests.
struct stalled_zc_send {
  explicit stalled_zc_send(fixture& f) : f(f) {
    f.opts.send_timeout = 100ms;
    f.opts.send_zc_min_bytes = 4096;
  }
  // Starts the send on a new connection; its handler sets `sent` and `send_ec`.
  void start() {
    const std::error_code ec = pool.register_buffers(*f.ctx.native_ring());
    ASSERT_FALSE(ec) << ec.message();
    const int snd = 16 * 1024;
    ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    c = std::make_unique<connection>(f.ctx, std::exchange(p.a, -1), f.opts, f.pipes, f.ring.get());
    c->set_phase(phase::body);
    const auto data = random_bytes(1 << 20, 24);
    fs::chain message;
    for (std::size_t off = 0; off < data.size(); off += fs::kPageSize) {
      fs::page_ref page = pool.allocate();
      ASSERT_TRUE(page);
      std::memcpy(page.data(), data.data() + off, fs::kPageSize);
      message.append(fs::slice(std::move(page), 0, fs::kPageSize));
    }
    c->async_send(std::move(message), [this](std::error_code ec, std::uint64_t) {
      send_ec = ec;
      sent = true;
    });
  }
  static fs::page_pool_options one_small_arena() {
    fs::page_pool_options po;
    po.initial_arenas = 1;
    po.try_huge_pages = false;
    return po;
  }
  fixture& f;
  fs::page_pool pool{one_small_arena()};
  tcp_pair p = make_pair(16 * 1024);  // a small window, and nobody reads yet
  std::unique_ptr<connection> c;
  std::error_code send_ec;
  bool sent = false;
};

// io_uring only (SEND_ZC). The peer stops reading: the zero-copy send times out and is
// cancelled, but it completes only at its notification, once the peer has taken the bytes the
// kernel still holds. While it waits for that, the send deadline has already fired: the
// watchdog must not re-arm it again and again (a timer due in the past, completing at once).
TEST(connection_ring, a_timed_out_send_waiting_for_its_cancel_does_not_spin_the_watchdog) {
  fixture f(false);
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  stalled_zc_send s(f);
  ASSERT_NO_FATAL_FAILURE(s.start());
  // The peer reads when told, or after 3 s: a spinning loop never returns from poll() to tell
  // it, and the notification that ends the spin comes only once the peer reads.
  std::atomic<bool> read_now{false};
  std::thread reader([&] {
    const auto give_up = std::chrono::steady_clock::now() + 3s;
    while (!read_now && std::chrono::steady_clock::now() < give_up)
      std::this_thread::sleep_for(1ms);
    sink drain(s.p.b);
  });
  const auto completed_before = f.ctx.stats().completed.load();
  const auto window_start = std::chrono::steady_clock::now();
  poll_until(
      f, [] { return false; }, 600ms);  // the send times out at 100 ms, then waits
  const auto window = std::chrono::steady_clock::now() - window_start;
  const auto completed = f.ctx.stats().completed.load() - completed_before;
  const bool waited = !s.sent;
  read_now = true;
  EXPECT_TRUE(poll_until(
      f, [&] { return s.sent; }, 5000ms));
  EXPECT_EQ(s.send_ec, std::errc::timed_out);
  EXPECT_EQ(s.c->stats().timeouts, 1u);
  f.close(*s.c);
  reader.join();
  ASSERT_LT(window, 1s) << "the loop did not come back to the test while nothing happened ("
                        << completed << " operations completed)";
  if (!waited) GTEST_SKIP() << "the send completed without waiting for the peer";
  EXPECT_LT(completed, 30u) << "operations completed while nothing happened";
}

// io_uring only (SEND_ZC). The peer never reads. Closing the connection with the timed-out send
// still waiting for its notification resets it: the kernel lets go of the send's pages, the send
// completes and the close with it, without a byte read by the peer, who then sees the reset.
TEST(connection_ring, a_close_with_a_send_held_by_a_peer_that_never_reads_resets_and_completes) {
  fixture f(false);
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  stalled_zc_send s(f);
  ASSERT_NO_FATAL_FAILURE(s.start());
  ASSERT_TRUE(poll_until(
      f, [&] { return s.c->stats().timeouts == 1; }, 5000ms));
  bool closed = false;
  s.c->async_close([&](std::error_code ec) {
    EXPECT_FALSE(ec);
    closed = true;
  });
  EXPECT_TRUE(poll_until(
      f, [&] { return closed; }, 5000ms))
      << "the close waited for a peer that never reads";
  EXPECT_TRUE(s.sent);
  EXPECT_EQ(s.send_ec, std::errc::timed_out);
  if (!closed) {  // let the peer read, so the connection can end before it is destroyed
    sink drain(s.p.b);
    ASSERT_TRUE(poll_until(
        f, [&] { return closed; }, 5000ms));
  }
  char buf[64 * 1024];
  ssize_t n = 0;
  while ((n = ::recv(s.p.b, buf, sizeof buf, 0)) > 0) {
  }
  EXPECT_EQ(n, -1) << "the peer saw an end of stream, not a reset";
  EXPECT_EQ(errno, ECONNRESET);
}

INSTANTIATE_TEST_SUITE_P(backends, connection_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "epoll" : "io_uring"; });

}  // namespace
}  // namespace pagewire::net
