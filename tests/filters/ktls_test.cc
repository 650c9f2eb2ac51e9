// The kTLS engine selection: the decision before the handshake (probe, context, socket),
// OpenSSL's answer after it, and the clean fallbacks. This machine's kernel has no tls ULP,
// so the probe and OpenSSL's confirmation are injected (tls_layer_options::ktls); the
// socket-BIO handshake, SSL_write/SSL_read on the socket and the move back to the memory BIO
// all run for real over loopback.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <pagewire/filters/ktls.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>

#include "tests/filters/stack.h"

namespace pwtest {
namespace {

namespace net = pagewire::net;

filters::ktls_probe probe(bool ulp, bool openssl) {
  filters::ktls_probe p;
  p.kernel_ulp = ulp;
  p.openssl_ktls = openssl;
  p.available_ulps = ulp ? "mptcp tls" : "mptcp";
  return p;
}

bool says_yes(SSL*) {
  return true;
}
bool says_no(SSL*) {
  return false;
}

TEST(KtlsDecision, TriesKtlsOnlyWithUlpOpensslContextAndSocket) {
  EXPECT_TRUE(filters::decide_ktls(probe(true, true), true, true).try_ktls);
  const auto no_ulp = filters::decide_ktls(probe(false, true), true, true);
  EXPECT_FALSE(no_ulp.try_ktls);
  EXPECT_NE(no_ulp.reason.find("no tls ULP"), std::string::npos) << no_ulp.reason;
  const auto no_build = filters::decide_ktls(probe(true, false), true, true);
  EXPECT_FALSE(no_build.try_ktls);
  EXPECT_NE(no_build.reason.find("without KTLS"), std::string::npos) << no_build.reason;
  const auto off = filters::decide_ktls(probe(true, true), false, true);
  EXPECT_FALSE(off.try_ktls);
  EXPECT_NE(off.reason.find("enable_ktls"), std::string::npos) << off.reason;
  const auto no_socket = filters::decide_ktls(probe(true, true), true, false);
  EXPECT_FALSE(no_socket.try_ktls);
  EXPECT_NE(no_socket.reason.find("no socket"), std::string::npos) << no_socket.reason;
}

TEST(KtlsDecision, ConfirmReasonNamesThePathAndCipher) {
  const auto yes = filters::ktls_confirm_reason(true, false, "TLSv1.3", "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(yes.rfind("kTLS:", 0), 0u) << yes;
  EXPECT_NE(yes.find("TLS_AES_128_GCM_SHA256"), std::string::npos);
  const auto no = filters::ktls_confirm_reason(false, false, "TLSv1.2", "ECDHE-RSA-AES128");
  EXPECT_EQ(no.rfind("userspace TLS:", 0), 0u) << no;
  EXPECT_NE(no.find("ECDHE-RSA-AES128"), std::string::npos);
}

using world = socket_world;

struct outcome {
  std::error_code server_write, client_read, server_read;
  std::vector<std::byte> at_client, at_server;
  filters::tls_stats stats;
  std::string describe;
};

// The server (hooks injected) reads the client's request, answers with `reply` (a header
// slice, then the file at `file` if not empty, else memory), shuts down; the client is an
// ordinary userspace tls_layer.
outcome exchange(const filters::ktls_hooks& hooks, const std::vector<std::byte>& request,
                 const std::vector<std::byte>& body, const std::string& file) {
  world w;
  outcome out;
  auto [cfd, sfd] = tcp_pair();
  net::connection cconn(w.ctx, cfd, w.opts, w.pipes, nullptr);
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
  std::error_code ec;
  filters::tls_layer_options so;
  so.ktls = hooks;
  filters::tls_layer server(std::make_unique<filters::plain_transport>(sconn, w.pool), server_tls(),
                            so, w.pool, &w.cache, ec);
  EXPECT_FALSE(ec) << ec.message();
  filters::tls_layer client(std::make_unique<filters::plain_transport>(cconn, w.pool), client_tls(),
                            {}, w.pool, nullptr, ec);
  EXPECT_FALSE(ec) << ec.message();
  int done = 0;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await send_all(client, to_chain(w.pool, request), 2));
        out.client_read = co_await recv_all(client, out.at_client);
        co_await cconn.async_close(asio::use_awaitable);
        ++done;
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        out.server_read = co_await recv_all(server, out.at_server);
        out.stats = server.stats();
        out.describe = server.describe();
        fs::chain msg;
        static const char hdr[] = "HTTP/1.1 200 OK\r\n\r\n";
        msg.append(fs::slice::from_static(hdr, sizeof hdr - 1));
        if (file.empty()) {
          msg.append(to_chain(w.pool, body));
        } else {
          std::error_code fec;
          auto f = fs::file::open(file.c_str(), fec);
          EXPECT_FALSE(fec) << fec.message();
          msg.append(fs::file_range(f, 0, f->size()));
        }
        auto [wec, n] = co_await server.write(std::move(msg), asio::use_awaitable);
        out.server_write = wec;
        if (!wec) {
          EXPECT_EQ(n, sizeof hdr - 1 + body.size());
        }
        co_await server.shutdown(asio::use_awaitable);
        co_await sconn.async_close(asio::use_awaitable);
        ++done;
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(done, 2);
  return out;
}

std::vector<std::byte> with_header(const std::vector<std::byte>& body) {
  static const char hdr[] = "HTTP/1.1 200 OK\r\n\r\n";
  std::vector<std::byte> v(reinterpret_cast<const std::byte*>(hdr),
                           reinterpret_cast<const std::byte*>(hdr) + sizeof hdr - 1);
  v.insert(v.end(), body.begin(), body.end());
  return v;
}

TEST(KtlsEngine, UlpPresentButOpensslRefusesMovesToTheMemoryBioAndStaysByteExact) {
  const auto probe_yes = probe(true, true);
  const auto request = text_bytes(300'000, 3);
  const auto body = text_bytes((2u << 20) + 7, 4);
  const std::string path = tmpdir() + "/ktls_body.bin";
  write_file(path, body);
  const auto o = exchange({&probe_yes, &says_no}, request, body, path);
  EXPECT_FALSE(o.server_read) << o.server_read.message();
  EXPECT_FALSE(o.server_write) << o.server_write.message();
  EXPECT_FALSE(o.client_read) << o.client_read.message();
  EXPECT_TRUE(o.at_server == request) << o.at_server.size();
  EXPECT_TRUE(o.at_client == with_header(body)) << o.at_client.size();
  EXPECT_TRUE(o.stats.ktls_attempted);
  EXPECT_EQ(o.stats.path, filters::tls_path::userspace);
  EXPECT_NE(o.stats.ktls_reason.find("did not enable kTLS send"), std::string::npos)
      << o.stats.ktls_reason;
  EXPECT_EQ(o.describe, "tls(userspace)>plain");
}

TEST(KtlsEngine, ConfirmedPathCarriesMemoryBySslWriteAndReadsBySslReadOnTheSocket) {
  const auto probe_yes = probe(true, true);
  const auto request = text_bytes(700'001, 5);
  const auto body = text_bytes((2u << 20) + 5, 6);
  const auto o = exchange({&probe_yes, &says_yes}, request, body, "");
  EXPECT_FALSE(o.server_read) << o.server_read.message();
  EXPECT_FALSE(o.server_write) << o.server_write.message();
  EXPECT_FALSE(o.client_read) << o.client_read.message();  // close_notify, then eof
  EXPECT_TRUE(o.at_server == request) << o.at_server.size();
  EXPECT_TRUE(o.at_client == with_header(body)) << o.at_client.size();
  EXPECT_EQ(o.stats.path, filters::tls_path::ktls);
  EXPECT_EQ(o.stats.ktls_reason.rfind("kTLS:", 0), 0u) << o.stats.ktls_reason;
  EXPECT_EQ(o.describe, "tls(ktls)>plain");
}

// A confirmation the kernel does not back (injected here) makes SSL_sendfile fail: the
// write ends with an error instead of waiting for the socket forever.
TEST(KtlsEngine, SendfileRefusedByOpensslEndsTheWriteWithAnError) {
  const auto probe_yes = probe(true, true);
  const auto body = text_bytes(100'000, 7);
  const std::string path = tmpdir() + "/ktls_refused.bin";
  write_file(path, body);
  const auto o = exchange({&probe_yes, &says_yes}, text_bytes(10, 8), body, path);
  EXPECT_EQ(o.server_write, filters::errc::tls_protocol) << o.server_write.message();
}

// SSL_sendfile on a real kTLS socket is sendfile(2): the file shrinks to nothing as the
// range starts, and it sends 0 bytes, no error. Stands in for ktls_send_file (this kernel has
// no kTLS); gives up with EIO after 100 calls, so that a caller that keeps asking fails
// instead of spinning.
std::string& shrinking_path() {
  static std::string p;
  return p;
}
int shrinking_calls = 0;
std::size_t send_file_that_shrinks(SSL* ssl, int fd, off_t offset, std::size_t len,
                                   std::error_code& ec) {
  ec.clear();
  if (shrinking_calls++ == 0) {
    EXPECT_EQ(::truncate(shrinking_path().c_str(), 0), 0);
  }
  if (shrinking_calls > 100) {
    ec = std::make_error_code(std::errc::io_error);
    return 0;
  }
  const ssize_t n = ::sendfile(SSL_get_wfd(ssl), fd, &offset, len);
  if (n < 0) ec = std::error_code(errno, std::system_category());
  return n < 0 ? 0 : static_cast<std::size_t>(n);
}

// The file of a range sent by SSL_sendfile shrank: the write ends with errc::truncated (not
// a busy loop on "0 bytes sent"), and the message cut short is not closed by close_notify:
// the reader sees errc::truncated after the header, as on the userspace path.
TEST(KtlsEngine, FileShrunkUnderSendfileEndsTheWriteTruncatedWithoutCloseNotify) {
  const auto probe_yes = probe(true, true);
  const auto body = text_bytes(100'000, 9);
  shrinking_path() = tmpdir() + "/ktls_shrinks.bin";
  write_file(shrinking_path(), body);
  shrinking_calls = 0;
  filters::ktls_hooks hooks{&probe_yes, &says_yes, &send_file_that_shrinks};
  const auto o = exchange(hooks, text_bytes(10, 8), body, shrinking_path());
  EXPECT_EQ(o.stats.path, filters::tls_path::ktls);
  EXPECT_EQ(shrinking_calls, 1);
  EXPECT_EQ(o.server_write, filters::errc::truncated) << o.server_write.message();
  EXPECT_EQ(o.client_read, filters::errc::truncated) << o.client_read.message();
  EXPECT_TRUE(o.at_client == with_header({})) << o.at_client.size();
}

// The socket-BIO handshake waits with POLL_ADD: a silent peer ends in handshake_timeout
// (the timer cancels the wait), a peer that leaves ends in a handshake error, not a hang.
TEST(KtlsEngine, SocketHandshakeTimesOutOnASilentPeerAndFailsOnAVanishedOne) {
  const auto probe_yes = probe(true, true);
  for (const bool vanish : {false, true}) {
    world w;
    auto [cfd, sfd] = tcp_pair();
    if (vanish) ::close(cfd);
    net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
    filters::tls_layer_options o;
    o.ktls = {&probe_yes, &says_yes};
    o.handshake_timeout = std::chrono::milliseconds(vanish ? 10'000 : 50);
    std::error_code ec, result;
    filters::tls_layer server(std::make_unique<filters::plain_transport>(sconn, w.pool),
                              server_tls(), o, w.pool, nullptr, ec);
    EXPECT_TRUE(server.stats().ktls_attempted);
    int done = 0;
    asio::co_spawn(
        w.ctx.get_executor(),
        [&]() -> asio::awaitable<void> {
          result = co_await server.async_handshake(asio::use_awaitable);
          co_await sconn.async_close(asio::use_awaitable);
          ++done;
        },
        asio::detached);
    w.ctx.run();
    EXPECT_EQ(done, 1);
    if (vanish) {
      EXPECT_TRUE(result == filters::errc::tls_handshake || result == filters::errc::truncated)
          << result.message();
    } else {
      EXPECT_EQ(result, filters::errc::handshake_timeout) << result.message();
      ::close(cfd);
    }
  }
}

TEST(KtlsEngine, NoSocketBelowOrNoUlpKeepsTheUserspaceEngineFromTheStart) {
  runtime::context ctx;
  fs::page_pool pool;
  const auto probe_yes = probe(true, true);
  auto [a, b] = filters::memory_transport::make_pair(ctx, pool);
  filters::tls_layer_options o;
  o.ktls.probe = &probe_yes;
  std::error_code ec;
  filters::tls_layer over_memory(std::move(b), server_tls(), o, pool, nullptr, ec);
  EXPECT_FALSE(over_memory.stats().ktls_attempted);
  EXPECT_NE(over_memory.stats().ktls_reason.find("no socket"), std::string::npos);

  world w;
  auto [cfd, sfd] = tcp_pair();
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
  const auto probe_no = probe(false, true);
  o.ktls.probe = &probe_no;
  filters::tls_layer over_socket(std::make_unique<filters::plain_transport>(sconn, w.pool),
                                 server_tls(), o, w.pool, nullptr, ec);
  EXPECT_FALSE(over_socket.stats().ktls_attempted);
  EXPECT_EQ(over_socket.stats().path, filters::tls_path::userspace);
  EXPECT_NE(over_socket.stats().ktls_reason.find("no tls ULP"), std::string::npos);
  ::close(cfd);
}

}  // namespace
}  // namespace pwtest
