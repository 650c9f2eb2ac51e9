#include "apps/zcbench/congestion.h"

#include <cerrno>
#include <fstream>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zcbench {

std::error_code set_congestion(int fd, std::string_view name) {
  if (::setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name.data(),
                   static_cast<socklen_t>(name.size())) != 0) {
    return {errno, std::system_category()};
  }
  return {};
}

std::string congestion_unavailable(std::string_view name) {
  if (name.empty()) return "needs a name";
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "socket: " + std::error_code(errno, std::system_category()).message();
  const std::error_code ec = set_congestion(fd, name);
  ::close(fd);
  if (!ec) return {};
  if (ec == std::errc::no_such_file_or_directory) {
    return "not available here (see /proc/sys/net/ipv4/tcp_available_congestion_control)";
  }
  return ec.message();
}

std::string system_congestion() {
  std::ifstream in("/proc/sys/net/ipv4/tcp_congestion_control");
  std::string name;
  std::getline(in, name);
  return name;
}

}  // namespace zcbench
