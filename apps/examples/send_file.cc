// send_file: the smallest complete pagewire server. It listens on HOST:PORT, and on every
// connection it accepts it sends the whole of FILE, then closes the connection. No request is
// read: the client connects and reads to the end.
//
//   send_file --listen 127.0.0.1:8000 FILE [--count N]
//   nc 127.0.0.1 8000 > copy      (or any TCP client)
//
// What it shows:
//   - runtime::context: one io_uring loop (an epoll fallback where io_uring is missing); every
//     object below is used on the thread that runs it.
//   - net::listen_tcp + net::acceptor: accepted sockets arrive as plain fds in a callback.
//   - net::connection::async_send with an fs::chain holding one fs::file_range: the file's
//     bytes go from the page cache to the socket by splice or sendfile, never through this
//     process's memory. fs::stats counts every byte user space copies: 0 here.
//   - connection::async_close: the orderly end (FIN after the queued bytes; the descriptor is
//     closed only when no operation on it is left), and the rule that a connection is
//     destroyed only after its close completed.
//
// Without --count it serves until it is killed. With --count N it stops after N connections
// and exits 0 with a summary on stderr. Usage errors: one line on stderr, exit status 2.

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <unistd.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/file_range.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/acceptor.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

namespace {

namespace pw = pagewire;

constexpr const char* kUsage = "usage: send_file --listen HOST:PORT FILE [--count N]";

int fail(const std::string& message) {
  std::fprintf(stderr, "send_file: %s\n", message.c_str());
  return 2;
}

// "1.2.3.4:80" or "[::1]:80" -> host and port; false when malformed.
bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  char* end = nullptr;
  const unsigned long p = std::strtoul(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || p > 65535 || s[colon + 1] == '-' || s[colon + 1] == '+') return false;
  port = static_cast<std::uint16_t>(p);
  return true;
}

// Everything one loop needs to serve the file: built once, shared by all connections.
struct file_server {
  pw::runtime::context& ctx;
  const pw::net::options& opts;
  pw::net::pipe_pool& pipes;                 // pipes for splice (file -> pipe -> socket)
  std::shared_ptr<const pw::fs::file> file;  // one open descriptor, shared by every send
  pw::net::acceptor* acceptor = nullptr;
  std::uint64_t limit = 0;  // connections to serve; 0: forever
  std::uint64_t accepted = 0, finished = 0, bytes_sent = 0;

  void on_accept(std::error_code ec, int fd) {
    if (ec) {
      // ECANCELED once after acceptor->stop(); anything else (EMFILE...) the acceptor survives:
      // it pauses and re-arms by itself.
      if (ec != std::errc::operation_canceled) {
        std::fprintf(stderr, "send_file: accept: %s\n", ec.message().c_str());
      }
      return;
    }
    if (limit != 0 && accepted == limit) {  // accepted before stop() took effect
      ::close(fd);
      return;
    }
    if (++accepted == limit) acceptor->stop();  // the last one: take no more
    serve(fd, accepted);
  }

  void serve(int fd, std::uint64_t id) {
    // The connection owns fd from here on. It is shared by the two handlers below and
    // destroyed when the last of them is: after async_close completed, as it must be.
    // No receive buffer ring (nullptr): this server never receives.
    auto conn = std::make_shared<pw::net::connection>(ctx, fd, opts, pipes, nullptr);
    // The message: one file range covering the whole file. A chain could also carry header
    // and trailer slices around it; they would go out in the same transmit.
    pw::fs::chain message(pw::fs::file_range(file, 0, file->size()));
    conn->async_send(std::move(message), [this, conn, id](std::error_code ec, std::uint64_t n) {
      bytes_sent += n;  // what the socket accepted, also when the send failed part way
      if (ec) {         // e.g. the client reset: only this connection ends
        std::fprintf(stderr, "send_file: connection %llu: %s after %llu of %llu bytes\n",
                     static_cast<unsigned long long>(id), ec.message().c_str(),
                     static_cast<unsigned long long>(n),
                     static_cast<unsigned long long>(file->size()));
      }
      conn->async_close([this, conn](std::error_code) { ++finished; });
    });
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen, path;
  std::uint64_t count = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n", kUsage);
      return 0;
    }
    if (arg == "--listen" || arg == "--count") {
      if (i + 1 == argc) return fail(arg + " needs a value; " + kUsage);
      const std::string value = argv[++i];
      if (arg == "--listen") {
        listen = value;
        continue;
      }
      char* end = nullptr;
      count = std::strtoull(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || value[0] == '-' || count == 0) {
        return fail("--count wants a positive number, not '" + value + "'");
      }
    } else if (arg.starts_with('-') && arg.size() > 1) {
      return fail("unknown flag " + arg + "; " + kUsage);
    } else if (path.empty()) {
      path = arg;
    } else {
      return fail("one FILE only, got '" + path + "' and '" + arg + "'; " + kUsage);
    }
  }
  if (listen.empty() || path.empty()) return fail(std::string("missing argument; ") + kUsage);
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(listen, host, port)) {
    return fail("--listen wants HOST:PORT, not '" + listen + "'");
  }

  // The file, opened once. fs::file keeps the descriptor and its size; file_ranges share it.
  std::error_code ec;
  auto file = pw::fs::file::open(path.c_str(), ec);
  if (!file) return fail(path + ": " + ec.message());
  if (!file->regular()) return fail(path + ": not a regular file");

  // pagewire's own sends pass MSG_NOSIGNAL, but splice(2) and sendfile(2) have no such flag:
  // moving file bytes to a socket the peer has reset raises SIGPIPE, which would end the
  // process. Ignored, the send fails with EPIPE or ECONNRESET instead.
  std::signal(SIGPIPE, SIG_IGN);

  pw::net::options opts;  // thresholds and timeouts of the net layer (net/policy.h)
  if ((ec = opts.validate())) return fail("net options: " + ec.message());
  const int listen_fd = pw::net::listen_tcp(host.c_str(), port, false, 128, ec);
  if (listen_fd < 0) return fail("--listen " + listen + ": " + ec.message());
  const std::string shown = host.find(':') == std::string::npos ? host : "[" + host + "]";
  std::fprintf(stderr, "send_file: listening on %s:%u\n", shown.c_str(), unsigned{port});
  std::fflush(stderr);

  // The loop: io_uring, or the epoll fallback where io_uring is refused (the library then says
  // so once on stderr, in a line starting "pagewire: ").
  pw::runtime::context ctx;
  pw::net::pipe_pool pipes(opts);

  const std::uint64_t copied_before = pw::fs::stats::copied_bytes();
  file_server server{ctx, opts, pipes, std::move(file)};
  server.limit = count;
  {
    pw::net::acceptor acceptor(ctx, listen_fd, opts);
    server.acceptor = &acceptor;
    acceptor.start([&server](std::error_code e, int fd) { server.on_accept(e, fd); });
    // Runs until nothing is left to do: the acceptor stopped (after N connections) and every
    // connection closed. Serving forever, the armed accept keeps it running.
    ctx.run();
  }  // the acceptor is not running any more (its ECANCELED call came): safe to destroy
  ::close(listen_fd);

  std::fprintf(stderr,
               "send_file: %llu connections, %llu bytes sent, %llu bytes copied in user space\n",
               static_cast<unsigned long long>(server.finished),
               static_cast<unsigned long long>(server.bytes_sent),
               static_cast<unsigned long long>(pw::fs::stats::copied_bytes() - copied_before));
  return 0;
}
