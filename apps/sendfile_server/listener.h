#pragma once

/// A worker's own listening socket: SO_REUSEPORT, so every worker binds the same address and
/// the kernel spreads connections over them. The first is opened only where nothing listens
/// yet, so a second server started on the same port fails instead of taking a share. The accept
/// loop is net::acceptor (multishot accept, backoff on descriptor exhaustion, pause at the
/// connection limit).
///
/// Ownership: the caller owns the returned descriptor. Threading: any thread. Errors: `ec` from
/// getaddrinfo (a name that does not resolve: EADDRNOTAVAIL), socket, setsockopt, bind or
/// listen.

#include <cstdint>
#include <string>
#include <system_error>

namespace pagewire::sendfile_server {

/// A bound, listening, non-blocking socket with SO_REUSEPORT on `host` (a name or literal; empty:
/// any) and `port`; -1 with `ec` on failure. `exclusive` (the first of a server's listeners):
/// fail with EADDRINUSE when some other socket already listens on a fixed port, which
/// SO_REUSEPORT alone would let this one share.
int open_listen_socket(const std::string& host, std::uint16_t port, bool exclusive,
                       std::error_code& ec);

}  // namespace pagewire::sendfile_server
