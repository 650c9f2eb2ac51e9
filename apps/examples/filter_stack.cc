// filter_stack: pagewire's stackable layers, both ends in one program. Over one loopback TCP
// connection, the server end writes FILE through a content filter (gzip or zstd) on top of TLS;
// the client end reads through TLS and decodes, and the program checks that what arrived is
// the file, byte for byte.
//
//   filter_stack FILE --cert CERT.pem --key KEY.pem [--coding gzip|zstd]
//
// A self-signed certificate to try it with:
//   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1
//       -subj /CN=localhost -keyout key.pem -out cert.pem      (one command line)
//
// Each end is a stack of filters::stream layers, top to bottom:
//
//   server: content_filter (encode) > tls_layer (server) > plain_transport > net::connection
//   client: content_filter (decode) > tls_layer (client) > plain_transport > net::connection
//
// The application talks to the top layer only: write(chain), read(), shutdown(); it cannot
// tell what is underneath. Each layer owns the one below it. The body is written as an
// fs::file_range: the content filter reads the file through fs::page_cache a piece at a time
// (with no filter above plain_transport, the same write would go out by splice/sendfile).
// Asynchronous calls take any Asio completion token; here they are awaited in coroutines. The
// connection itself comes from net::listen_tcp and net::async_connect_tcp.
//
// Prints "filter_stack: OK N bytes, coding X, tls path P" and exits 0 when the bytes match;
// otherwise says why and exits 1.

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <sys/socket.h>
#include <system_error>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/filters/stream.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/file_range.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/acceptor.h>
#include <pagewire/net/connect.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

namespace {

namespace pw = pagewire;
namespace asio = boost::asio;
using asio::use_awaitable;  // co_await yields std::tuple<std::error_code, ...>: no exceptions

int fail(const std::string& message) {
  std::fprintf(stderr, "filter_stack: %s\n", message.c_str());
  return 1;
}

// Both ends of one loopback TCP connection, made in this process: {server fd, client fd}.
// The client end comes from net::async_connect_tcp (IORING_OP_CONNECT); once it completed,
// the server end is waiting in the listener's queue.
std::pair<int, int> loopback_pair(pw::runtime::context& ctx, std::error_code& ec) {
  std::uint16_t port = 0;  // any free port
  const int listener = pw::net::listen_tcp("127.0.0.1", port, false, 1, ec);
  if (listener < 0) return {-1, -1};
  int client = -1;
  pw::net::async_connect_tcp(ctx, "127.0.0.1", port, [&](std::error_code e, int fd) {
    ec = e;
    client = fd;
  });
  ctx.run();  // returns once the connect completed: nothing else is pending yet
  const int server = ec ? -1 : ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (!ec && server < 0) {
    ec.assign(errno, std::system_category());
    ::close(client);
  }
  ::close(listener);
  if (ec) return {-1, -1};
  return {server, client};
}

// content_filter > tls_layer > plain_transport over `conn`. `tls` is set to the TLS layer
// (owned by the returned stack) so its stats can be read later.
std::unique_ptr<pw::filters::stream> make_stack(pw::net::connection& conn,
                                                std::shared_ptr<pw::filters::tls_context> tls_ctx,
                                                const pw::filters::content_filter_options& coding,
                                                pw::fs::page_pool& pool, pw::fs::page_cache& cache,
                                                pw::filters::tls_layer*& tls, std::error_code& ec) {
  std::unique_ptr<pw::filters::stream> s =
      std::make_unique<pw::filters::plain_transport>(conn, pool);
  auto t = std::make_unique<pw::filters::tls_layer>(
      std::move(s), std::move(tls_ctx), pw::filters::tls_layer_options{}, pool, &cache, ec);
  if (ec) return nullptr;
  tls = t.get();
  auto top = std::make_unique<pw::filters::content_filter>(std::move(t), coding, pool, &cache, ec);
  if (ec) return nullptr;
  return top;
}

// The server end: the whole file as one file range, then shutdown (the gzip trailer or zstd
// frame end, TLS close_notify, FIN). The TLS handshake runs implicitly before the first write.
asio::awaitable<void> send_side(pw::filters::stream& top, pw::net::connection& conn,
                                pw::fs::file_range body, std::string& problem) {
  std::error_code ec;
  std::tie(ec, std::ignore) = co_await top.write(pw::fs::chain(std::move(body)), use_awaitable);
  if (ec) {
    problem = "server write: " + ec.message();
  } else if ((ec = co_await top.shutdown(use_awaitable))) {
    problem = "server shutdown: " + ec.message();
  }
  // Keep the socket open until the client has shut down too (its close_notify reads as
  // errc::eof): closing earlier could reset the connection under bytes it has yet to read.
  while (!ec) {
    std::tie(ec, std::ignore) = co_await top.read(use_awaitable);
    if (ec && ec != pw::filters::errc::eof) problem = "server read: " + ec.message();
  }
  co_await conn.async_close(use_awaitable);  // the connection may be destroyed after this
}

// The client end: reads decoded bytes until the end of the stream and compares them with the
// file (pread of `file` at the same offset), then shuts its side down.
asio::awaitable<void> receive_side(pw::filters::stream& top, pw::net::connection& conn,
                                   const pw::fs::file& file, std::uint64_t& received,
                                   std::string& problem) {
  std::vector<std::byte> want;
  for (;;) {
    auto [e, data] = co_await top.read(use_awaitable);  // a chain of memory slices
    if (e) {
      if (e != pw::filters::errc::eof) problem = "client read: " + e.message();
      break;
    }
    for (const pw::fs::segment& s : data.segments()) {
      const std::span<const std::byte> got = std::get<pw::fs::slice>(s).bytes();
      want.resize(got.size());
      const ssize_t n = ::pread(file.fd(), want.data(), want.size(), static_cast<off_t>(received));
      if (problem.empty() && (n != static_cast<ssize_t>(got.size()) ||
                              std::memcmp(want.data(), got.data(), got.size()) != 0)) {
        problem = "received bytes differ from the file in [" + std::to_string(received) + ", " +
                  std::to_string(received + got.size()) + ")";
      }
      received += got.size();
    }
  }
  if (std::error_code ec = co_await top.shutdown(use_awaitable); ec && problem.empty()) {
    problem = "client shutdown: " + ec.message();
  }
  co_await conn.async_close(use_awaitable);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path, cert, key, coding_arg = "gzip";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string* value = arg == "--cert"     ? &cert
                         : arg == "--key"    ? &key
                         : arg == "--coding" ? &coding_arg
                                             : nullptr;
    if (value != nullptr && i + 1 < argc) {
      *value = argv[++i];
    } else if (value == nullptr && !arg.starts_with('-') && path.empty()) {
      path = arg;
    } else {
      return fail("unexpected '" + arg +
                  "'; usage: filter_stack FILE --cert CERT --key KEY [--coding gzip|zstd]");
    }
  }
  if (path.empty() || cert.empty() || key.empty()) {
    return fail("usage: filter_stack FILE --cert CERT --key KEY [--coding gzip|zstd]");
  }
  pw::filters::coding coding;
  if (coding_arg == "gzip") {
    coding = pw::filters::coding::gzip;
  } else if (coding_arg == "zstd") {
    coding = pw::filters::coding::zstd;
  } else {
    return fail("--coding wants gzip or zstd, not '" + coding_arg + "'");
  }

  std::error_code ec;
  const auto file = pw::fs::file::open(path.c_str(), ec);
  if (!file) return fail(path + ": " + ec.message());
  if (!file->regular()) return fail(path + ": not a regular file");

  // TLS configuration, one per role. The client trusts exactly the server's self-signed
  // certificate (ca_file); a real client would also set server_name to check the host name.
  std::string detail;
  pw::filters::tls_options server_tls;
  server_tls.role = pw::filters::tls_role::server;
  server_tls.cert_file = cert;
  server_tls.key_file = key;
  const auto server_tls_ctx = pw::filters::tls_context::create(server_tls, ec, &detail);
  if (!server_tls_ctx) return fail(cert + ", " + key + ": " + ec.message() + " " + detail);
  pw::filters::tls_options client_tls;
  client_tls.role = pw::filters::tls_role::client;
  client_tls.ca_file = cert;
  const auto client_tls_ctx = pw::filters::tls_context::create(client_tls, ec, &detail);
  if (!client_tls_ctx) return fail(cert + ": " + ec.message() + " " + detail);

  // Content coding, one side each: the server encodes, the client decodes. The decoder's
  // output cap (a bound against decompression bombs) is the size we expect.
  pw::filters::content_filter_options encode, decode;
  encode.encode = pw::filters::encoder_options{.kind = coding};
  decode.decode = pw::filters::decoder_options{.kind = coding, .max_output = file->size()};

  // splice/sendfile to a reset socket raise SIGPIPE (see send_file.cc).
  std::signal(SIGPIPE, SIG_IGN);

  // One loop thread for everything; the page pool supplies the pages filters write into; the
  // page cache reads file ranges for the layers that must see file bytes (gzip, TLS).
  pw::runtime::context ctx;
  pw::fs::page_pool pool;
  pw::fs::page_cache cache(ctx, pool);
  // Default net options: a receive waits at most header_timeout (10 s) for its first byte and
  // a send at most send_timeout (30 s) for progress, so a stuck peer ends in ETIMEDOUT.
  pw::net::options opts;
  if ((ec = opts.validate())) return fail("net options: " + ec.message());
  pw::net::pipe_pool pipes(opts);

  const auto [server_fd, client_fd] = loopback_pair(ctx, ec);
  if (ec) return fail("loopback connection: " + ec.message());

  std::uint64_t received = 0;
  std::string server_problem, client_problem;
  pw::filters::tls_path path_used{};
  {
    // Connections first, stacks after: the stacks go first when the block ends.
    pw::net::connection server_conn(ctx, server_fd, opts, pipes, nullptr);
    pw::net::connection client_conn(ctx, client_fd, opts, pipes, nullptr);
    pw::filters::tls_layer *server_tls_layer = nullptr, *client_tls_layer = nullptr;
    auto server =
        make_stack(server_conn, server_tls_ctx, encode, pool, cache, server_tls_layer, ec);
    if (!server) return fail("server stack: " + ec.message());
    auto client =
        make_stack(client_conn, client_tls_ctx, decode, pool, cache, client_tls_layer, ec);
    if (!client) return fail("client stack: " + ec.message());

    asio::co_spawn(
        ctx.get_executor(),
        send_side(*server, server_conn, pw::fs::file_range(file, 0, file->size()), server_problem),
        asio::detached);
    asio::co_spawn(ctx.get_executor(),
                   receive_side(*client, client_conn, *file, received, client_problem),
                   asio::detached);
    ctx.run();  // until both coroutines have finished and every operation completed
    path_used = server_tls_layer->stats().path;
  }

  if (!client_problem.empty()) return fail(client_problem);
  if (!server_problem.empty()) return fail(server_problem);
  if (received != file->size()) {
    return fail("received " + std::to_string(received) + " of " + std::to_string(file->size()) +
                " bytes");
  }
  std::printf("filter_stack: OK %llu bytes, coding %s, tls path %s\n",
              static_cast<unsigned long long>(received), coding_arg.c_str(),
              path_used == pw::filters::tls_path::ktls ? "ktls" : "userspace");
  return 0;
}
