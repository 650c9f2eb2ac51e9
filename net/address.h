#pragma once

/// tcp_address: a socket address for TCP made from an IP literal and a port, shared by
/// listen_tcp (acceptor.h) and async_connect_tcp (connect.h). No name lookup: IPv4 literals
/// ("127.0.0.1") and IPv6 literals without a zone ("::1", not "fe80::1%eth0"); resolve names
/// first (getaddrinfo).
/// A value type; no errors beyond parse()'s.

#include <cstdint>
#include <netinet/in.h>
#include <sys/socket.h>
#include <system_error>

namespace pagewire::net {

struct tcp_address {
  sockaddr_storage storage{};
  socklen_t size = 0;  ///< of the sockaddr_in or sockaddr_in6 in storage; 0 when unset

  /// `host` as an IPv4 or IPv6 literal and `port`. std::errc::invalid_argument when `host` is
  /// neither (the address is then left unset).
  static std::error_code parse(const char* host, std::uint16_t port, tcp_address& out) noexcept;

  int family() const noexcept { return storage.ss_family; }
  const sockaddr* data() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* data() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
  /// The port in host byte order (0 when unset).
  std::uint16_t port() const noexcept;
};

}  // namespace pagewire::net
