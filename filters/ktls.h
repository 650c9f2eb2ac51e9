#pragma once

/// Kernel TLS detection. kTLS needs three things: the kernel's `tls` upper-layer protocol
/// (listed in /proc/sys/net/ipv4/tcp_available_ulp once the tls module is loaded), an
/// OpenSSL built with KTLS (OPENSSL_NO_KTLS undefined), and, per connection, OpenSSL's own
/// confirmation after the handshake on a socket BIO with SSL_OP_ENABLE_KTLS
/// (BIO_get_ktls_send), which also depends on the negotiated cipher. When all hold, file
/// ranges go out with SSL_sendfile (sendfile(2) on the kTLS socket: the body never enters
/// user space) and memory with SSL_write; otherwise userspace TLS (tls_engine) runs.
/// Which path a connection uses is in tls_layer::stats().
///
/// Threading: probe_ktls() is thread-safe (computed once).

#include <cstdint>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <system_error>

typedef struct ssl_st SSL;

namespace pagewire::filters {

struct ktls_probe {
  bool kernel_ulp = false;     ///< "tls" in tcp_available_ulp
  bool openssl_ktls = false;   ///< OpenSSL compiled with KTLS support
  std::string available_ulps;  ///< the file's content (e.g. "mptcp"), for the log
  /// Both hold: worth trying kTLS on a socket BIO.
  bool usable() const noexcept { return kernel_ulp && openssl_ktls; }
  /// One line saying why kTLS is or is not in use.
  std::string reason() const;
};

/// Reads the ULP list (once per process) and OpenSSL's build.
const ktls_probe& probe_ktls();

/// Before the handshake: whether a connection tries kTLS (a handshake over a socket BIO
/// with SSL_OP_ENABLE_KTLS) and why (or why not). It needs the probe's kernel ULP and
/// OpenSSL build, the context's enable_ktls, and a socket directly below (plain_transport).
struct ktls_decision {
  bool try_ktls = false;
  std::string reason;
};
ktls_decision decide_ktls(const ktls_probe& p, bool enabled_in_context, bool socket_below);
/// After that handshake: the reason line for OpenSSL's answer (BIO_get_ktls_send).
std::string ktls_confirm_reason(bool send_active, bool recv_active, std::string_view version,
                                std::string_view cipher);

/// Injection points for tests (tls_layer_options::ktls): a probe instead of probe_ktls(),
/// OpenSSL's post-handshake answer instead of ktls_send_active(), and a sender of file
/// ranges instead of ktls_send_file() (same contract).
struct ktls_hooks {
  const ktls_probe* probe = nullptr;
  bool (*send_active)(SSL* ssl) = nullptr;
  std::size_t (*send_file)(SSL* ssl, int fd, off_t offset, std::size_t len,
                           std::error_code& ec) = nullptr;
};
/// Parses the ULP list format (space-separated names); for tests.
bool ulp_list_has_tls(std::string_view list) noexcept;

/// After a handshake over a socket BIO with SSL_OP_ENABLE_KTLS: whether OpenSSL moved the
/// send (and receive) direction into the kernel.
bool ktls_send_active(SSL* ssl) noexcept;
bool ktls_recv_active(SSL* ssl) noexcept;

/// Sends `len` bytes of `fd` from `offset` over a kTLS socket (SSL_sendfile). Returns bytes
/// sent, or an error (EAGAIN on a full non-blocking socket: wait for POLLOUT and call
/// again with the rest); 0 and no error when the file ends at `offset` (it shrank).
/// Precondition: ktls_send_active(ssl).
std::size_t ktls_send_file(SSL* ssl, int fd, off_t offset, std::size_t len, std::error_code& ec);

}  // namespace pagewire::filters
