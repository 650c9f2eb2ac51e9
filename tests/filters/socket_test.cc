// Stacks on real loopback sockets (plain_transport over net::connection): the same echo
// over plain/tls/gzip+plain/gzip+tls, and a pagewire TLS file endpoint that
// `openssl s_client` and `curl --insecure` fetch from, byte-exact.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <openssl/ssl.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>

#include "tests/filters/stack.h"
#include "tests/net/net_testing.h"

namespace pwtest {
namespace {

namespace net = pagewire::net;

using world = socket_world;

// The two ends of one loopback TCP connection, each with a stack of `spec` on it (the server
// side builds the server's half). Destroy the stacks before `w`.
struct stacks_over_loopback {
  stacks_over_loopback(world& w, const std::string& spec)
      : stacks_over_loopback(w, spec, tcp_pair()) {}

  net::connection cconn, sconn;
  std::unique_ptr<filters::stream> client, server;

 private:
  stacks_over_loopback(world& w, const std::string& spec, std::pair<int, int> fds)
      : cconn(w.ctx, fds.first, w.opts, w.pipes, nullptr),
        sconn(w.ctx, fds.second, w.opts, w.pipes, nullptr),
        client(build_stack(spec, std::make_unique<filters::plain_transport>(cconn, w.pool), false,
                           w.env())),
        server(build_stack(spec, std::make_unique<filters::plain_transport>(sconn, w.pool), true,
                           w.env())) {}
};

class SocketTransparency : public ::testing::TestWithParam<std::string> {};

TEST_P(SocketTransparency, EchoOverLoopbackIsByteExact) {
  world w;
  stacks_over_loopback ends(w, GetParam());
  net::connection &cconn = ends.cconn, &sconn = ends.sconn;
  auto &client = ends.client, &server = ends.server;
  const auto data = text_bytes((2u << 20) + 5);
  std::vector<std::byte> at_server, at_client;
  int done = 0;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await send_all(*client, to_chain(w.pool, data), 3));
        EXPECT_FALSE(co_await recv_all(*client, at_client));
        co_await cconn.async_close(asio::use_awaitable);
        ++done;
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await recv_all(*server, at_server));
        EXPECT_FALSE(co_await send_all(*server, to_chain(w.pool, at_server), 2));
        co_await sconn.async_close(asio::use_awaitable);
        ++done;
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(done, 2);
  EXPECT_TRUE(at_server == data) << at_server.size();
  EXPECT_TRUE(at_client == data) << at_client.size();
}

INSTANTIATE_TEST_SUITE_P(Stacks, SocketTransparency,
                         ::testing::Values("plain", "tls", "gzip+plain", "gzip+tls"), stack_name);

// write_flags::more reaches the socket as MSG_MORE on the write's last submission: its tail
// waits for the next write of the message, so a head and a body written apart share one
// segment (TCP_NODELAY, which net::connection sets, would otherwise push each write alone).
TEST(PlainTransport, WriteWithMoreSharesItsSegmentWithTheNextWrite) {
  for (const bool more : {true, false}) {
    world w;
    auto [cfd, sfd] = tcp_pair();
    net::connection conn(w.ctx, sfd, w.opts, w.pipes, nullptr);
    filters::plain_transport t(conn, w.pool);
    const auto head = text_bytes(200, 1), body = text_bytes(300, 2);
    const std::uint32_t before = net::testing::segs_out(sfd);
    std::uint32_t segments = 0;
    asio::co_spawn(
        w.ctx.get_executor(),
        [&]() -> asio::awaitable<void> {
          const auto flags =
              more ? filters::write_flags::more : filters::write_flags::end_of_message;
          auto [e1, n1] = co_await t.write(to_chain(w.pool, head), flags, asio::use_awaitable);
          EXPECT_FALSE(e1);
          auto [e2, n2] = co_await t.write(to_chain(w.pool, body), asio::use_awaitable);
          EXPECT_FALSE(e2);
          EXPECT_EQ(n1 + n2, 500u);
          segments = net::testing::segs_out(sfd) - before;
          co_await conn.async_close(asio::use_awaitable);
        },
        asio::detached);
    w.ctx.run();
    std::vector<std::byte> got(1000);
    std::size_t n = 0;
    for (ssize_t r; (r = ::recv(cfd, got.data() + n, got.size() - n, 0)) > 0;)
      n += static_cast<std::size_t>(r);
    ::close(cfd);
    got.resize(n);
    std::vector<std::byte> want = head;
    want.insert(want.end(), body.begin(), body.end());
    EXPECT_TRUE(got == want) << n;
    EXPECT_EQ(segments, more ? 1u : 2u) << (more ? "with" : "without") << " write_flags::more";
  }
}

// A TLS peer that ends its stream with a bare FIN (no close_notify, as many HTTP clients
// close): the reader gets errc::truncated, nothing is sent back for it (OpenSSL would send a
// fatal decode_error alert), and our side still ends with data and close_notify, which the
// peer reads as a clean end. TLS 1.3 (pagewire seals) and 1.2 (OpenSSL seals).
class TlsBareFin : public ::testing::TestWithParam<int> {};

TEST_P(TlsBareFin, IsTruncatedAndAnsweredWithoutAnAlert) {
  world w;
  auto [cfd, sfd] = tcp_pair();
  net::connection cconn(w.ctx, cfd, w.opts, w.pipes, nullptr);
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
  filters::tls_layer_options o;
  std::error_code ec;
  filters::tls_layer client(std::make_unique<filters::plain_transport>(cconn, w.pool),
                            client_tls(GetParam()), o, w.pool, &w.cache, ec);
  ASSERT_FALSE(ec);
  auto server =
      build_stack("tls", std::make_unique<filters::plain_transport>(sconn, w.pool), true, w.env());
  const auto request = text_bytes(300, 1), answer = text_bytes(5000, 2);
  std::vector<std::byte> at_server, at_client;
  std::error_code server_read, client_read;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        auto [e, n] = co_await client.write(to_chain(w.pool, request), asio::use_awaitable);
        EXPECT_FALSE(e) << e.message();
        ::shutdown(cfd, SHUT_WR);  // below the TLS layer: no close_notify
        client_read = co_await recv_all(client, at_client);
        co_await cconn.async_close(asio::use_awaitable);
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        server_read = co_await recv_all(*server, at_server);
        auto [e, n] = co_await server->write(to_chain(w.pool, answer), asio::use_awaitable);
        EXPECT_FALSE(e) << e.message();
        EXPECT_FALSE(co_await server->shutdown(asio::use_awaitable));
        co_await sconn.async_close(asio::use_awaitable);
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(server_read, filters::errc::truncated) << server_read.message();
  EXPECT_TRUE(at_server == request) << at_server.size();
  EXPECT_FALSE(client_read) << client_read.message();  // recv_all: errc::eof, a clean end
  EXPECT_TRUE(at_client == answer) << at_client.size();
}

INSTANTIATE_TEST_SUITE_P(Versions, TlsBareFin, ::testing::Values(12, 13));

// A body whose file range ends before its first byte (the file emptied after it was opened, or
// a range that starts past the end) through an encoding stack: the write and the shutdown fail
// with errc::truncated before any byte of the gzip member / zstd frame was produced, and the
// reader must not take the cut body for an empty one: it reads errc::truncated, not a clean
// end, over a plain socket (a FIN) as over TLS (close_notify after what went out). The
// client's request comes first, as in HTTP (over TLS, the handshake is done).
class EncodedBodyCutBeforeItsFirstByte : public ::testing::TestWithParam<std::string> {};

TEST_P(EncodedBodyCutBeforeItsFirstByte, ReadsAsTruncatedNotAsAnEmptyBody) {
  for (const bool emptied : {true, false}) {
    SCOPED_TRACE(emptied ? "file emptied after open" : "range past the end of the file");
    world w;
    std::string path = tmpdir() + "/cut_" + GetParam() + (emptied ? "_emptied" : "_past_end");
    write_file(path, text_bytes(50000));
    std::error_code ec;
    auto f = fs::file::open(path.c_str(), ec);
    ASSERT_TRUE(f) << ec.message();
    fs::chain body;
    if (emptied) {
      ASSERT_EQ(::truncate(path.c_str(), 0), 0);
      body.append(fs::file_range(f, 0, 50000));
    } else {
      body.append(fs::file_range(f, 60000, 1000));
    }
    stacks_over_loopback ends(w, GetParam());
    net::connection &cconn = ends.cconn, &sconn = ends.sconn;
    auto &client = ends.client, &server = ends.server;
    std::error_code write_ec = filters::errc::busy, shutdown_ec = filters::errc::busy,
                    read_ec = filters::errc::busy;
    std::vector<std::byte> got;
    int done = 0;
    auto close_both = [&]() -> asio::awaitable<void> {  // once both sides are through
      if (++done < 2) co_return;
      co_await sconn.async_close(asio::use_awaitable);
      co_await cconn.async_close(asio::use_awaitable);
    };
    asio::co_spawn(
        w.ctx.get_executor(),
        [&]() -> asio::awaitable<void> {
          auto [re, request] = co_await server->read(asio::use_awaitable);  // TLS: handshake done
          EXPECT_FALSE(re) << re.message();
          auto [e, n] = co_await server->write(std::move(body), asio::use_awaitable);
          write_ec = e;
          EXPECT_EQ(n, 0u);
          shutdown_ec = co_await server->shutdown(asio::use_awaitable);
          co_await close_both();
        },
        asio::detached);
    asio::co_spawn(
        w.ctx.get_executor(),
        [&]() -> asio::awaitable<void> {
          auto [e, n] =
              co_await client->write(to_chain(w.pool, text_bytes(100)),
                                     filters::write_flags::end_of_message, asio::use_awaitable);
          EXPECT_FALSE(e) << e.message();
          read_ec = co_await recv_all(*client, got);
          co_await close_both();
        },
        asio::detached);
    w.ctx.run();
    EXPECT_EQ(done, 2);
    EXPECT_EQ(write_ec, filters::errc::truncated) << write_ec.message();
    EXPECT_EQ(shutdown_ec, filters::errc::truncated) << shutdown_ec.message();
    EXPECT_EQ(read_ec, filters::errc::truncated)
        << "the reader saw " << got.size() << " bytes, then: " << read_ec.message();
    EXPECT_TRUE(got.empty()) << got.size();
  }
}

INSTANTIATE_TEST_SUITE_P(Stacks, EncodedBodyCutBeforeItsFirstByte,
                         ::testing::Values("gzip+plain", "zstd+plain", "deflate+plain", "gzip+tls",
                                           "zstd+tls"),
                         stack_name);

// After a fatal alert (here bad_record_mac for a forged record) our side has ended: shutdown
// sends no close_notify after it (RFC 8446 6.2), only the FIN.
TEST(TlsFatalAlert, IsTheLastRecordSent) {
  world w;
  auto [cfd, sfd] = tcp_pair();
  net::connection sconn(w.ctx, sfd, w.opts, w.pipes, nullptr);
  std::error_code ec;  // no session tickets: the alert is the only record after the handshake
  filters::tls_layer server(std::make_unique<filters::plain_transport>(sconn, w.pool),
                            server_tls("", false), filters::tls_layer_options{}, w.pool, &w.cache,
                            ec);
  ASSERT_FALSE(ec) << ec.message();
  // The client: OpenSSL on the blocking socket, then a forged application-data record of 32
  // bytes that the server cannot open, a FIN, and a raw read of what the server sends back.
  std::size_t after_forged = 0;
  unsigned char first_type = 0;
  std::thread client([cfd = cfd, &after_forged, &first_type] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, cfd);
    EXPECT_EQ(SSL_connect(ssl), 1);
    EXPECT_EQ(SSL_write(ssl, "0123456789", 10), 10);
    unsigned char forged[5 + 32] = {0x17, 0x03, 0x03, 0x00, 0x20};
    for (std::size_t i = 5; i < sizeof forged; ++i)
      forged[i] = static_cast<unsigned char>(i * 37);
    EXPECT_EQ(::send(cfd, forged, sizeof forged, MSG_NOSIGNAL), ssize_t{sizeof forged});
    ::shutdown(cfd, SHUT_WR);
    unsigned char rest[4096] = {};
    for (ssize_t r; (r = ::recv(cfd, rest + after_forged, sizeof rest - after_forged, 0)) > 0;)
      after_forged += static_cast<std::size_t>(r);
    first_type = rest[0];
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(cfd);
  });
  std::error_code server_read;
  std::vector<std::byte> at_server;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        server_read = co_await recv_all(server, at_server);
        co_await server.shutdown(asio::use_awaitable);
        co_await sconn.async_close(asio::use_awaitable);
      },
      asio::detached);
  w.ctx.run();
  client.join();
  EXPECT_EQ(server_read, filters::errc::tls_protocol) << server_read.message();
  EXPECT_EQ(at_server.size(), 10u);
  // One record: the alert (5 + 2 + 1 + 16 bytes), and nothing after it.
  EXPECT_EQ(after_forged, 24u);
  EXPECT_EQ(first_type, 0x17);
}

// Serves one request on `port`: reads up to the blank line, answers with a header and the
// file `body` (a file range: TLS reads it through the page cache), then closes.
void serve_file_once(world& w, int listener, const std::string& body, const std::string& spec,
                     std::error_code& result) {
  asio::co_spawn(
      w.ctx.get_executor(),
      [&w, &result, listener, body, spec]() -> asio::awaitable<void> {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);  // the client is up
        net::connection conn(w.ctx, fd, w.opts, w.pipes, nullptr);
        auto s = build_stack(spec, std::make_unique<filters::plain_transport>(conn, w.pool), true,
                             w.env());
        std::string head;
        for (int i = 0; i < 1000 && head.find("\r\n\r\n") == std::string::npos; ++i) {
          auto [ec, c] = co_await s->read(asio::use_awaitable);
          if (ec) {
            result = ec;
            break;
          }
          for (auto b : to_bytes(c))
            head.push_back(static_cast<char>(b));
        }
        if (!result) {
          std::error_code ec;
          auto f = fs::file::open(body.c_str(), ec);
          static std::string hdr;
          hdr = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(f->size()) +
                "\r\nConnection: close\r\n\r\n";
          fs::chain msg;
          msg.append(fs::slice::from_static(hdr.data(), hdr.size()));
          msg.append(fs::file_range(f, 0, f->size()));
          auto [wec, n] = co_await s->write(std::move(msg), asio::use_awaitable);
          result = wec;
          EXPECT_EQ(n, hdr.size() + f->size()) << wec.message() << " " << s->describe();
          result = co_await s->shutdown(asio::use_awaitable);
        }
        // Let the client read to the end before the socket goes.
        for (int i = 0; i < 100; ++i) {
          auto [ec, c] = co_await s->read(asio::use_awaitable);
          if (ec) break;
        }
        co_await conn.async_close(asio::use_awaitable);
      },
      asio::detached);
}

void fetch_with(const std::string& tool_cmd, const std::string& out_path) {
  world w;
  int port = 0;
  const int l = listen_loopback(port);
  const auto body = text_bytes((1u << 20) + 333);
  const std::string body_path = tmpdir() + "/served.bin";
  write_file(body_path, body);
  std::error_code result;
  int rc = -1;
  std::string cmd = tool_cmd;
  cmd.replace(cmd.find("PORT"), 4, std::to_string(port));
  std::thread tool([&] { rc = std::system(cmd.c_str()); });
  serve_file_once(w, l, body_path, "tls", result);
  w.ctx.run();
  tool.join();
  ::close(l);
  EXPECT_FALSE(result) << result.message();
  EXPECT_EQ(rc, 0) << cmd;
  auto got = read_file(out_path);
  // s_client prints the whole response; curl writes only the body.
  const std::string text(reinterpret_cast<const char*>(got.data()), got.size());
  const auto pos = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.1 200", 0) == 0 && pos != std::string::npos) {
    got.erase(got.begin(), got.begin() + static_cast<long>(pos + 4));
  }
  EXPECT_TRUE(got == body) << "got " << got.size() << " bytes";
}

TEST(ExternalClients, CurlInsecureFetchesAFileOverPagewireTls) {
  const std::string out = tmpdir() + "/curl.out";
  fetch_with(
      "curl -sS --insecure --http1.1 --max-time 60 -o " + out + " https://127.0.0.1:PORT/file",
      out);
}

TEST(ExternalClients, OpensslSClientCompletesHandshakeAndTransfer) {
  const std::string out = tmpdir() + "/sclient.out";
  fetch_with(
      "printf 'GET /file HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n' | "
      "timeout 60 openssl s_client -connect 127.0.0.1:PORT -alpn http/1.1 -quiet "
      "-ign_eof > " +
          out + " 2>/dev/null",
      out);
}

// A client that asks for records of at most 512 bytes (max_fragment_length, RFC 6066): the
// server's records (TLS 1.3, sealed by pagewire) keep to it, else the client fails the body
// with record_overflow.
TEST(ExternalClients, OpensslSClientAskingForSmallRecordsGetsTheFile) {
  const std::string out = tmpdir() + "/sclient_maxfrag.out";
  fetch_with(
      "printf 'GET /file HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n' | "
      "timeout 60 openssl s_client -connect 127.0.0.1:PORT -alpn http/1.1 -maxfraglen 512 "
      "-quiet -ign_eof > " +
          out + " 2>/dev/null",
      out);
}

TEST(ExternalClients, PlainHttpClientOnTheTlsPortGetsAClearError) {
  world w;
  int port = 0;
  const int l = listen_loopback(port);
  std::error_code result;
  int rc = -1;
  std::thread tool([&] {
    rc = std::system(("curl -sS --max-time 30 -o /dev/null http://127.0.0.1:" +
                      std::to_string(port) + "/ 2>/dev/null")
                         .c_str());
  });
  serve_file_once(w, l, "/nonexistent", "tls", result);
  w.ctx.run();
  tool.join();
  ::close(l);
  EXPECT_EQ(result, filters::errc::plain_http) << result.message();
  EXPECT_NE(rc, 0);
}

}  // namespace
}  // namespace pwtest
