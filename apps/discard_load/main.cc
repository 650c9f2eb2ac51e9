// discard_load: an HTTP/1.1 keep-alive load generator whose receiving side copies (almost)
// nothing, for the server comparison of `make bench` (bench/server_compare.sh).
//
// wrk reads every response body into its buffer: on loopback at 1 MiB a response that is one
// copy of 1 MiB and the TCP work around it, about 200 µs of wrk's core, so a server faster
// than that is measured at wrk's ceiling. discard_load reads each response head into a small
// buffer and drops the body inside the kernel: recv(2) with MSG_TRUNC on a TCP socket
// discards the bytes it would have copied (tcp(7)). What is left of the client's cost per
// response is the system calls and the TCP work, so the server's own speed shows.
//
// Each of --connections connections sends GET --path, reads the response (status 200 and a
// Content-Length are required; chunked and close-delimited bodies are errors), and sends the
// next request on the same connection, until --duration seconds pass or --requests responses
// completed. A connection that fails (refused, reset, closed early, a malformed or non-200
// response, no progress for --timeout seconds) counts one error, is closed, and is opened
// again while time is left.
//
// Output, one line: requests=N seconds=S requests_per_sec=R body_bytes=B copied_bytes=C
// errors=E cpu_seconds=U (copied_bytes: what recv copied into user space, heads and any body
// bytes that came with them; cpu_seconds: this process, user and system). Exit status: 0 when
// at least one response completed and none failed, 1 otherwise, 2 on a usage error.
#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "apps/http/ascii.h"

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t kHeadRead = 1024;  // bytes per head read (heads are a few hundred)
constexpr std::size_t kDiscardArea = std::size_t{1} << 30;  // most body bytes per recv call

struct options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/";
  int connections = 16;
  double duration = 3;
  std::uint64_t requests = 0;  // 0: as many as the duration allows
  double timeout = 2;
};

struct totals {
  std::uint64_t requests = 0;
  std::uint64_t body_bytes = 0;
  std::uint64_t copied_bytes = 0;
  std::uint64_t errors = 0;
};

enum class phase { head, body };

struct connection {
  int fd = -1;
  phase state = phase::head;
  std::size_t have = 0;  // head bytes in buf
  std::uint64_t body_left = 0;
  std::uint64_t body_size = 0;
  clock_type::time_point last_progress{};
  char buf[8192];
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "discard_load: %s\nusage: discard_load --port P [--host 127.0.0.1] [--path /] "
               "[--connections 16] [--duration 3] [--requests N] [--timeout 2]\n",
               why);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) usage("missing value");
    const char* v = argv[++i];
    char* end = nullptr;
    if (a == "--host") {
      o.host = v;
    } else if (a == "--port") {
      o.port = static_cast<int>(std::strtol(v, &end, 10));
      if (*end || o.port <= 0 || o.port > 65535) usage("bad --port");
    } else if (a == "--path") {
      o.path = v;
      if (o.path.empty() || o.path[0] != '/' || o.path.find_first_of(" \r\n") != std::string::npos)
        usage("bad --path");
    } else if (a == "--connections") {
      o.connections = static_cast<int>(std::strtol(v, &end, 10));
      if (*end || o.connections <= 0 || o.connections > 10000) usage("bad --connections");
    } else if (a == "--duration") {
      o.duration = std::strtod(v, &end);
      if (*end || !(o.duration > 0)) usage("bad --duration");
    } else if (a == "--requests") {
      o.requests = std::strtoull(v, &end, 10);
      if (*end) usage("bad --requests");
    } else if (a == "--timeout") {
      o.timeout = std::strtod(v, &end);
      if (*end || !(o.timeout > 0)) usage("bad --timeout");
    } else {
      usage("unknown option");
    }
  }
  if (o.port == 0) usage("--port is required");
  return o;
}

class load {
 public:
  load(const options& o, sockaddr_in addr)
      : opts_(o),
        addr_(addr),
        request_("GET " + o.path + " HTTP/1.1\r\nHost: " + o.host + "\r\n\r\n"),
        conns_(static_cast<std::size_t>(o.connections)) {
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    // Address space for the discarding recv calls, reserved and inaccessible (no memory
    // behind it): MSG_TRUNC writes nothing there, and a kernel that did would fail the call
    // with EFAULT rather than copy unnoticed.
    void* area = ::mmap(nullptr, kDiscardArea, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ep_ < 0 || area == MAP_FAILED) {
      std::perror("discard_load: setup");
      std::exit(1);
    }
    discard_area_ = static_cast<char*>(area);
  }
  ~load() {
    for (connection& c : conns_)
      close_conn(c);
    ::close(ep_);
    ::munmap(discard_area_, kDiscardArea);
  }

  totals run() {
    start_ = clock_type::now();
    deadline_ = start_ + std::chrono::duration_cast<clock_type::duration>(
                             std::chrono::duration<double>(opts_.duration));
    for (connection& c : conns_)
      open_conn(c);
    std::vector<epoll_event> events(conns_.size());
    while (clock_type::now() < deadline_ && !enough()) {
      const int n = ::epoll_wait(ep_, events.data(), static_cast<int>(events.size()), 50);
      if (n < 0 && errno != EINTR) {
        std::perror("discard_load: epoll_wait");
        break;
      }
      for (int i = 0; i < n; ++i)
        on_ready(conns_[events[static_cast<std::size_t>(i)].data.u64]);
      expire_stalled();
    }
    end_ = clock_type::now();
    return totals_;
  }
  double seconds() const { return std::chrono::duration<double>(end_ - start_).count(); }

 private:
  bool enough() const { return opts_.requests > 0 && totals_.requests >= opts_.requests; }

  void open_conn(connection& c) {
    c = connection{};
    c.last_progress = clock_type::now();
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) return fail(c, "socket", errno);
    // A blocking connect, bounded by --timeout (SO_SNDTIMEO applies to connect: a full
    // listen queue or an unreachable host would otherwise hold it for minutes), then
    // non-blocking reads.
    const auto us = static_cast<long long>(opts_.timeout * 1e6);
    const timeval limit{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof addr_) != 0)
      return fail(c, "connect", errno);
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
    if (::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) != 0) return fail(c, "epoll_ctl", errno);
    send_request(c);
  }

  void close_conn(connection& c) {
    if (c.fd >= 0) ::close(c.fd);  // (closing removes it from the epoll set)
    c.fd = -1;
  }

  // One error (`err`: the errno of a failed call; 0 for a protocol error): the connection is
  // closed, and opened again while time is left.
  void fail(connection& c, const char* what, int err = 0) {
    ++totals_.errors;
    if (totals_.errors <= 5) {  // the first few, so a run that fails says why
      std::fprintf(stderr, "discard_load: %s: %s\n", what,
                   err != 0 ? std::strerror(err) : "protocol error");
    }
    close_conn(c);
    if (clock_type::now() < deadline_ && !enough()) reopen_.push_back(&c);
  }

  void send_request(connection& c) {
    c.state = phase::head;
    c.have = 0;
    // A request of a few dozen bytes on a connection whose previous response was read whole:
    // the socket buffer is empty, so it goes in one call.
    const ssize_t n = ::send(c.fd, request_.data(), request_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n != static_cast<ssize_t>(request_.size())) {
      fail(c, "send", n < 0 ? errno : 0);
    }
  }

  void on_ready(connection& c) {
    while (c.fd >= 0) {
      if (c.state == phase::head) {
        if (!read_head(c)) break;
      } else if (!discard_body(c)) {
        break;
      }
    }
    reopen_pending();
  }

  // Opens again the connections that failed so far; those that fail again wait for the next
  // round of the loop (at most 50 ms), so a refusing server is not asked in a busy loop.
  void reopen_pending() {
    std::vector<connection*> now;
    now.swap(reopen_);
    for (connection* c : now)
      open_conn(*c);
  }

  // One non-blocking recv with `flags`: the bytes it took (progress for --timeout), or 0 when
  // none are there now or the connection failed (closed by the peer: `closed_what`).
  std::size_t receive(connection& c, char* buf, std::size_t len, int flags,
                      const char* closed_what) {
    const ssize_t n = ::recv(c.fd, buf, len, flags | MSG_DONTWAIT);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) fail(c, "recv", errno);
      return 0;
    }
    if (n == 0) {
      fail(c, closed_what);
      return 0;
    }
    c.last_progress = clock_type::now();
    return static_cast<std::size_t>(n);
  }

  // Reads head bytes; true when the loop should go on (the head is complete, or more came).
  bool read_head(connection& c) {
    // At most kHeadRead at a time: body bytes that follow the head in the same read are
    // copied, so a read of the whole buffer would copy up to 8 KiB of every body.
    const std::size_t room = std::min(kHeadRead, sizeof c.buf - c.have);
    const std::size_t n =
        receive(c, c.buf + c.have, room, 0, "connection closed before a response head");
    if (n == 0) return false;
    totals_.copied_bytes += static_cast<std::uint64_t>(n);
    c.have += n;
    const std::string_view got(c.buf, c.have);
    const std::size_t end = got.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (c.have == sizeof c.buf) fail(c, "response head longer than 8 KiB");
      return true;
    }
    std::uint64_t length = 0;
    if (!parse_head(got.substr(0, end + 2), length)) {
      fail(c, "response is not 200 with a Content-Length");
      return false;
    }
    const std::uint64_t body_here = c.have - (end + 4);
    if (body_here > length) {  // bytes past the response: nothing was asked for
      fail(c, "bytes after the response body");
      return false;
    }
    c.body_size = length;
    c.body_left = length - body_here;
    c.state = phase::body;
    if (c.body_left == 0) complete(c);
    return true;
  }

  // Status 200 and one Content-Length field (case-insensitive name), as apps/http reads them.
  static bool parse_head(std::string_view head, std::uint64_t& length) {
    if (head.substr(0, 9) != "HTTP/1.1 " || head.substr(9, 3) != "200") return false;
    bool found = false;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      const std::size_t line_end = head.find("\r\n", pos + 2);
      const std::string_view line = head.substr(pos + 2, line_end - (pos + 2));
      const std::size_t colon = line.find(':');
      if (colon != std::string_view::npos &&
          pagewire::http::iequals(line.substr(0, colon), "content-length")) {
        const auto value =
            pagewire::http::parse_u64(pagewire::http::trim_ows(line.substr(colon + 1)));
        if (!value || found) return false;
        length = *value;
        found = true;
      }
      pos = line_end;
    }
    return found;
  }

  // Drops body bytes in the kernel; true when the loop should go on.
  bool discard_body(connection& c) {
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(c.body_left, kDiscardArea));
    // MSG_TRUNC on TCP: the bytes are consumed and not copied; the buffer is not written.
    const std::size_t n =
        receive(c, discard_area_, want, MSG_TRUNC, "connection closed inside a response body");
    if (n == 0) return false;
    c.body_left -= n;
    if (c.body_left == 0) complete(c);
    return true;
  }

  void complete(connection& c) {
    ++totals_.requests;
    totals_.body_bytes += c.body_size;
    if (clock_type::now() >= deadline_ || enough()) {
      close_conn(c);
      return;
    }
    send_request(c);
  }

  void expire_stalled() {
    const auto now = clock_type::now();
    const auto limit = std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(opts_.timeout));
    for (connection& c : conns_) {
      if (c.fd >= 0 && now - c.last_progress > limit) {
        fail(c, "no progress within --timeout");
      }
    }
    reopen_pending();
  }

  options opts_;
  sockaddr_in addr_;
  std::string request_;
  std::vector<connection> conns_;
  std::vector<connection*> reopen_;
  int ep_ = -1;
  char* discard_area_ = nullptr;  // kDiscardArea bytes, PROT_NONE
  totals totals_;
  clock_type::time_point start_, end_, deadline_;
};

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1)
    usage("--host must be an IPv4 address");
  load l(o, addr);
  const double cpu_before = cpu_seconds();
  const totals t = l.run();
  const double secs = l.seconds();
  std::printf(
      "requests=%llu seconds=%.3f requests_per_sec=%.2f body_bytes=%llu copied_bytes=%llu "
      "errors=%llu cpu_seconds=%.3f\n",
      static_cast<unsigned long long>(t.requests), secs,
      secs > 0 ? static_cast<double>(t.requests) / secs : 0.0,
      static_cast<unsigned long long>(t.body_bytes),
      static_cast<unsigned long long>(t.copied_bytes), static_cast<unsigned long long>(t.errors),
      cpu_seconds() - cpu_before);
  return t.requests > 0 && t.errors == 0 ? 0 : 1;
}
