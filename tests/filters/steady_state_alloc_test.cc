// Steady state on the C++ heap, over a real socket, as sendfile_server's HTTPS sessions run:
//  - writes: a write_request reused for message after message, each message swapped into
//    `data`. The layers hand their chain storage back through the request (trip_layer swaps
//    its input with `data`, page_writer::take_into keeps the request's storage, the transport
//    gets its transmit's previous storage back);
//  - reads: one read_waiter reused for every read, reading the data in place. The TLS layer
//    gets the chain back and reuses it, and its engine keeps the received buffers in a vector.
// Once the chains have grown, neither allocates per call.
//
// This binary replaces the global operator new to count calls; OpenSSL and zlib allocate
// with malloc and are not counted.

#include <atomic>
#include <cstdlib>
#include <netinet/tcp.h>
#include <new>
#include <sys/socket.h>
#include <thread>

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <pagewire/filters/plain_transport.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/recv_buffer_ring.h>

#include "tests/filters/stack.h"

namespace {
std::atomic<bool> g_counting{false};
std::atomic<std::uint64_t> g_news{0};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace pwtest {
namespace {

namespace net = pagewire::net;

// A write completes from the loop; `done` says it did.
struct reused_write {
  bool done = false;
  std::error_code ec;
  std::uint64_t bytes = 0;
  filters::callback_write_request req{&reused_write::on_done, this};
  static void on_done(void* self, std::error_code ec, std::uint64_t bytes) {
    auto* w = static_cast<reused_write*>(self);
    w->done = true;
    w->ec = ec;
    w->bytes = bytes;
  }
};

// Sends `message` through `s` with `w`, as a session does: the message chain swapped into the
// request, which leaves in `message` the storage the previous write handed back.
void write_once(runtime::context& ctx, filters::stream& s, reused_write& w, fs::chain& message) {
  w.done = false;
  w.req.reset();
  w.req.data.swap(message);
  s.start_write(w.req);
  while (!w.done && ctx.run_one() > 0) {
  }
}

// A blocking OpenSSL client on `fd`, handshake done; null if it failed. The caller frees it.
SSL* connect_tls(int fd) {
  const auto ctx = client_tls();
  SSL* ssl = SSL_new(ctx->native());  // holds its own reference to the SSL_CTX
  SSL_set_fd(ssl, fd);
  SSL_set_tlsext_host_name(ssl, "localhost");
  if (SSL_connect(ssl) == 1) return ssl;
  SSL_free(ssl);
  return nullptr;
}

// The client: a thread that reads the socket to its end with blocking calls (through OpenSSL
// for a TLS stack, which also answers the server's handshake), so that only the server's
// writes run on the loop. Counts the bytes it got (plaintext under TLS).
class drain_client {
 public:
  drain_client(int fd, bool tls) : thread_([this, fd, tls] { run(fd, tls); }) {}
  std::uint64_t join() {
    thread_.join();
    return bytes_;
  }

 private:
  void run(int fd, bool tls) {
    char buf[65536];
    if (!tls) {
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
        bytes_ += static_cast<std::uint64_t>(n);
      return;
    }
    SSL* ssl = connect_tls(fd);
    if (!ssl) return;
    for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;)
      bytes_ += static_cast<std::uint64_t>(n);
    SSL_free(ssl);
  }
  std::uint64_t bytes_ = 0;
  std::thread thread_;
};

class ReusedWriteRequest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReusedWriteRequest, AllocatesNothingPerWriteOnceTheChainsHaveGrown) {
  socket_world w;
  auto [cfd, sfd] = tcp_pair();
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
  auto server = build_stack(GetParam(), std::make_unique<filters::plain_transport>(sconn, w.pool),
                            true, w.env());
  drain_client client(cfd, GetParam().find("tls") != std::string::npos);
  static const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n";
  static const std::string body(1024, 'x');
  reused_write wr;
  fs::chain message;
  constexpr int kWarmUp = 64, kMeasured = 200;
  std::uint64_t sent = 0;
  for (int i = 0; i < kWarmUp + kMeasured; ++i) {
    if (i == kWarmUp) {  // the first write also ran a TLS handshake
      g_news = 0;
      g_counting = true;
    }
    message.append(fs::slice::from_static(head.data(), head.size()));
    message.append(fs::slice::from_static(body.data(), body.size()));
    write_once(w.ctx, *server, wr, message);
    ASSERT_FALSE(wr.ec) << wr.ec.message();
    ASSERT_EQ(wr.bytes, head.size() + body.size());
    sent += wr.bytes;
  }
  g_counting = false;
  EXPECT_EQ(g_news.load(), 0u) << "operator new calls in " << kMeasured << " writes through "
                               << server->describe();

  // The end of the stream (TLS: close_notify), then the client reads to it.
  bool shut = false;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        co_await server->shutdown(asio::use_awaitable);
        shut = true;
      },
      asio::detached);
  while (!shut && w.ctx.run_one() > 0) {
  }
  ::shutdown(sfd, SHUT_WR);
  const std::uint64_t got = client.join();
  if (GetParam().find("gzip") == std::string::npos) {
    EXPECT_EQ(got, sent);  // every byte of every message arrived
  } else {
    EXPECT_GT(got, 0u);  // compressed: fewer bytes on the wire
  }
  server.reset();
  sconn.async_close([](std::error_code) {});
  w.ctx.run();
  ::close(cfd);
}

INSTANTIATE_TEST_SUITE_P(Stacks, ReusedWriteRequest,
                         ::testing::Values("plain", "tls", "gzip+plain", "gzip+tls"), stack_name);

// The reading side's client: a thread that writes `count` messages of `size` bytes one at a
// time, 200 µs apart so that most reads carry one message (through OpenSSL for TLS).
class paced_writer {
 public:
  paced_writer(int fd, int count, std::size_t size)
      : thread_([this, fd, count, size] { run(fd, count, size); }) {}
  std::uint64_t join() {
    thread_.join();
    return bytes_;
  }

 private:
  void run(int fd, int count, std::size_t size) {
    const std::string message(size, 'r');
    const int one = 1;  // each message in its own segment: no waiting for the server's ACK
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (SSL* ssl = connect_tls(fd)) {
      for (int i = 0; i < count; ++i) {
        if (SSL_write(ssl, message.data(), static_cast<int>(size)) <= 0) break;
        bytes_ += size;
        ::usleep(200);
      }
      SSL_shutdown(ssl);
      SSL_free(ssl);
    }
    ::shutdown(fd, SHUT_WR);
  }
  std::uint64_t bytes_ = 0;
  std::thread thread_;
};

// Reads with one read_waiter, in place: counts the bytes, keeps nothing.
struct reused_reader : filters::read_waiter {
  bool done = false;
  std::error_code ec;
  std::uint64_t bytes = 0;
  reused_reader() { fn = &reused_reader::on_read; }
  static void on_read(filters::read_waiter* w, std::error_code ec, fs::chain&& data) {
    auto* r = static_cast<reused_reader*>(w);
    r->done = true;
    r->ec = ec;
    r->bytes += data.size();
  }
};

TEST(ReusedReader, TlsReadsAllocateNothingOnceTheChainsHaveGrown) {
  socket_world w;
  std::error_code ec;
  auto ring = pagewire::net::recv_buffer_ring::create(w.ctx, w.opts, 0, ec);
  ASSERT_TRUE(ring) << ec.message();  // plain recv would allocate a block per receive
  auto [cfd, sfd] = tcp_pair();
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, ring.get());
  auto server =
      build_stack("tls", std::make_unique<filters::plain_transport>(sconn, w.pool), true, w.env());
  constexpr int kMessages = 400;
  constexpr std::size_t kSize = 1024, kWarmUpBytes = 64 * kSize;
  paced_writer client(cfd, kMessages, kSize);
  reused_reader reader;
  int reads = 0, counted_reads = 0;
  for (;;) {
    if (reader.bytes >= kWarmUpBytes && !g_counting) {
      g_news = 0;
      g_counting = true;
    }
    reader.done = false;
    server->start_read(reader);
    while (!reader.done && w.ctx.run_one() > 0) {
    }
    if (!reader.done || reader.ec) break;
    ++reads;
    if (g_counting) ++counted_reads;
  }
  g_counting = false;
  EXPECT_EQ(reader.ec, filters::errc::eof) << reader.ec.message();
  EXPECT_EQ(reader.bytes, client.join());
  EXPECT_EQ(reader.bytes, kMessages * kSize);
  EXPECT_GT(counted_reads, 100) << reads << " reads in all";
  EXPECT_EQ(g_news.load(), 0u) << "operator new calls in " << counted_reads << " reads";
  server.reset();
  sconn.async_close([](std::error_code) {});
  w.ctx.run();
  ::close(cfd);
}

}  // namespace
}  // namespace pwtest
