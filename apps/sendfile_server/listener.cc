#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pagewire/apps/sendfile_server/listener.h>

namespace pagewire::sendfile_server {

namespace {

// SO_REUSEPORT lets any socket of the same user join the address, so a second server started
// on a busy port would silently take a share of its connections. A bind without SO_REUSEPORT
// finds out first: it fails with EADDRINUSE while anything listens there (SO_REUSEADDR only
// lets it past connections in TIME_WAIT).
bool address_in_use(const addrinfo& a, std::error_code& ec) {
  const int fd = ::socket(a.ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    ec = std::error_code(errno, std::system_category());
    if (fd >= 0) ::close(fd);
    return true;
  }
  const bool busy = ::bind(fd, a.ai_addr, a.ai_addrlen) != 0;
  if (busy) ec = std::error_code(errno, std::system_category());
  ::close(fd);
  return busy;
}

}  // namespace

int open_listen_socket(const std::string& host, std::uint16_t port, bool exclusive,
                       std::error_code& ec) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
      rc != 0) {
    ec = std::error_code(rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL, std::system_category());
    return -1;
  }
  if (exclusive && port != 0 && address_in_use(*res, ec)) {
    ::freeaddrinfo(res);
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
    ec = std::error_code(errno, std::system_category());
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace pagewire::sendfile_server
