#include <arpa/inet.h>

#include <pagewire/net/address.h>

namespace pagewire::net {

std::error_code tcp_address::parse(const char* host, std::uint16_t port,
                                   tcp_address& out) noexcept {
  out = tcp_address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out.size = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out.size = sizeof *v6;
  } else {  // inet_pton wrote nothing: `out` is still unset
    return std::make_error_code(std::errc::invalid_argument);
  }
  return {};
}

std::uint16_t tcp_address::port() const noexcept {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return 0;
}

}  // namespace pagewire::net
