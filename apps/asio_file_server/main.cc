// asio_file_server: the benchmark's "what a user would write instead" row.
//
// A plain Boost.Asio HTTP/1.1 file server on the epoll reactor, written the way a
// typical Asio application serves files: read the request head with async_read_until,
// then loop pread() of a 64 KiB chunk into a buffer and async_write() it. Every body
// byte is copied through user space, through one buffer per connection. It understands GET
// and HEAD with keep-alive, and nothing more: it exists to be measured against, not to face
// the internet.
//
// Usage: asio_file_server --root DIR [--listen HOST:PORT] [--threads N]
// PORT is 0..65535 (0 picks a free port), N is 1..1024; anything else (or trailing junk) is a
// one-line error and exit status 2. It prints "asio_file_server: listening on HOST:PORT" on
// stderr once it accepts, and exits 0 on SIGINT or SIGTERM, 1 when it cannot start.
// An accept that fails is logged on stderr and retried: at once for a connection the peer
// aborted, after a 100 ms pause when descriptors or memory ran out (EMFILE, ENFILE, ENOBUFS,
// ENOMEM), so the server takes connections again once some close.

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio.hpp>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxHead = 16 * 1024;
constexpr unsigned kMaxThreads = 1024;
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

struct options {
  std::string root;
  std::string host = "127.0.0.1";
  unsigned short port = 8081;
  unsigned threads = 1;
};

struct request {
  std::string method;
  std::string path;
  bool keep_alive = true;
};

bool parse_head(std::string_view head, request& out) {
  const auto line_end = head.find("\r\n");
  const auto sp1 = head.find(' ');
  if (line_end == std::string_view::npos || sp1 == std::string_view::npos || sp1 > line_end) {
    return false;
  }
  const auto sp2 = head.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 > line_end) return false;
  out.method = std::string(head.substr(0, sp1));
  out.path = std::string(head.substr(sp1 + 1, sp2 - sp1 - 1));
  const auto version = head.substr(sp2 + 1, line_end - sp2 - 1);
  out.keep_alive = version == "HTTP/1.1";
  std::string lower(head.substr(line_end));
  for (auto& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.find("\r\nconnection: close") != std::string::npos) out.keep_alive = false;
  if (lower.find("\r\nconnection: keep-alive") != std::string::npos) out.keep_alive = true;
  const auto query = out.path.find('?');
  if (query != std::string::npos) out.path.resize(query);
  return !out.path.empty() && out.path[0] == '/' && out.path.find("..") == std::string::npos;
}

asio::awaitable<void> write_status(tcp::socket& socket, const char* status, bool keep_alive) {
  std::string head = std::string("HTTP/1.1 ") + status + "\r\nContent-Length: 0\r\nConnection: " +
                     (keep_alive ? "keep-alive" : "close") + "\r\n\r\n";
  co_await asio::async_write(socket, asio::buffer(head), asio::use_awaitable);
}

// Closes the file however serve_file ends: a write to a peer that went away throws.
struct file_closer {
  int fd;
  ~file_closer() {
    if (fd >= 0) ::close(fd);
  }
};

// `buffer` is the connection's: allocated with its first body, reused for every response.
asio::awaitable<bool> serve_file(tcp::socket& socket, const options& opts, const request& req,
                                 std::vector<char>& buffer) {
  std::string path = opts.root + req.path;
  if (path.back() == '/') path += "index.html";
  const file_closer file{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  const int fd = file.fd;
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    co_await write_status(socket, "404 Not Found", req.keep_alive);
    co_return req.keep_alive;
  }
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: " +
      std::to_string(st.st_size) + "\r\nConnection: " + (req.keep_alive ? "keep-alive" : "close") +
      "\r\n\r\n";
  co_await asio::async_write(socket, asio::buffer(head), asio::use_awaitable);
  if (req.method == "GET" && st.st_size > 0) buffer.resize(kChunk);
  off_t offset = 0;
  bool ok = true;
  while (req.method == "GET" && offset < st.st_size) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
    if (n <= 0) {
      ok = false;
      break;
    }
    co_await asio::async_write(socket, asio::buffer(buffer.data(), static_cast<std::size_t>(n)),
                               asio::use_awaitable);
    offset += n;
  }
  co_return ok&& req.keep_alive;
}

asio::awaitable<void> session(tcp::socket socket, const options& opts) {
  std::string data;
  std::vector<char> buffer;
  try {
    for (;;) {
      const std::size_t n = co_await asio::async_read_until(
          socket, asio::dynamic_buffer(data, kMaxHead), "\r\n\r\n", asio::use_awaitable);
      request req;
      const bool parsed = parse_head(std::string_view(data).substr(0, n), req);
      data.erase(0, n);
      bool keep = false;
      if (!parsed) {
        co_await write_status(socket, "400 Bad Request", false);
      } else if (req.method != "GET" && req.method != "HEAD") {
        co_await write_status(socket, "405 Method Not Allowed", false);
      } else {
        keep = co_await serve_file(socket, opts, req, buffer);
      }
      if (!keep) break;
    }
  } catch (const std::exception&) {
    // The peer went away or sent garbage: this connection ends, the server goes on.
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

// Accept failures that clear up on their own once connections close or memory frees.
bool out_of_resources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  const int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

// Accepts until the acceptor is closed. No accept error ends it (one thrown out of here would
// be dropped by co_spawn's detached and the server would never accept again): running out of
// descriptors pauses, anything else (a connection aborted before it was accepted) retries.
asio::awaitable<void> listener(tcp::acceptor& acceptor, const options& opts) {
  asio::steady_timer pause(acceptor.get_executor());
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket(acceptor.get_executor());
    co_await acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted) co_return;  // shutting down
    if (ec) {
      const bool wait = out_of_resources(ec);
      std::fprintf(stderr, "asio_file_server: accept: %s%s\n", ec.message().c_str(),
                   wait ? "; pausing 100 ms" : "");
      if (wait) {
        pause.expires_after(kAcceptPause);
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        if (ec == asio::error::operation_aborted) co_return;
      }
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);  // best effort: the peer may be gone already
    asio::co_spawn(acceptor.get_executor(), session(std::move(socket), opts), asio::detached);
  }
}

// Whole of `text` as a decimal number in [lo, hi]; no sign, spaces or trailing junk.
bool parse_number(std::string_view text, unsigned long lo, unsigned long hi, unsigned long& out) {
  unsigned long value = 0;
  const char* const end = text.data() + text.size();
  if (text.empty() || text[0] < '0' || text[0] > '9') return false;
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < lo || value > hi) return false;
  out = value;
  return true;
}

// Fills `opts` from the command line; on a bad one, prints one line on stderr and returns
// false.
bool parse_args(int argc, char** argv, options& opts) {
  const char* const usage = "usage: %s --root DIR [--listen HOST:PORT] [--threads N]\n";
  for (int i = 1; i < argc; i += 2) {  // every option takes a value
    const std::string_view arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    unsigned long number = 0;
    if (arg == "--root" && value) {
      opts.root = value;
    } else if (arg == "--listen" && value) {
      const std::string_view hostport = value;
      const auto colon = hostport.rfind(':');
      if (colon == std::string_view::npos || colon == 0 ||
          !parse_number(hostport.substr(colon + 1), 0, 65535, number)) {
        std::fprintf(
            stderr, "asio_file_server: bad --listen '%s' (want HOST:PORT, PORT 0..65535)\n", value);
        return false;
      }
      opts.host = std::string(hostport.substr(0, colon));
      opts.port = static_cast<unsigned short>(number);
    } else if (arg == "--threads" && value) {
      if (!parse_number(value, 1, kMaxThreads, number)) {
        std::fprintf(stderr, "asio_file_server: bad --threads '%s' (want 1..%u)\n", value,
                     kMaxThreads);
        return false;
      }
      opts.threads = static_cast<unsigned>(number);
    } else {
      std::fprintf(stderr, usage, argv[0]);
      return false;
    }
  }
  if (opts.root.empty()) std::fprintf(stderr, usage, argv[0]);
  return !opts.root.empty();
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  if (!parse_args(argc, argv, opts)) return 2;
  try {
    asio::io_context io(static_cast<int>(opts.threads));
    tcp::acceptor acceptor(io, {asio::ip::make_address(opts.host), opts.port});
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { io.stop(); });
    const tcp::endpoint local = acceptor.local_endpoint();
    // The listener handles its own errors; should it still end by an exception (out of
    // memory), the server stops and says so rather than living on without accepting.
    bool listener_failed = false;
    asio::co_spawn(io, listener(acceptor, opts), [&](std::exception_ptr failure) {
      if (!failure) return;
      listener_failed = true;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "asio_file_server: listener failed: %s\n", e.what());
      } catch (...) {
        std::fprintf(stderr, "asio_file_server: listener failed\n");
      }
      io.stop();
    });
    std::vector<std::thread> workers;
    workers.reserve(opts.threads);
    try {
      for (unsigned i = 1; i < opts.threads; ++i)
        workers.emplace_back([&] { io.run(); });
    } catch (const std::exception& e) {
      // Joinable threads must not be destroyed: stop the ones that started and wait for them.
      std::fprintf(stderr, "asio_file_server: cannot start thread %zu of %u: %s\n",
                   workers.size() + 1, opts.threads, e.what());
      io.stop();
      for (auto& worker : workers)
        worker.join();
      return 1;
    }
    std::fprintf(stderr, "asio_file_server: listening on %s:%u\n",
                 local.address().to_string().c_str(), static_cast<unsigned>(local.port()));
    io.run();
    for (auto& worker : workers)
      worker.join();
    if (listener_failed) return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_file_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
