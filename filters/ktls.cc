#include <cerrno>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/ktls.h>

namespace pagewire::filters {

bool ulp_list_has_tls(std::string_view list) noexcept {
  std::size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && (list[i] == ' ' || list[i] == '\n' || list[i] == '\t'))
      ++i;
    std::size_t j = i;
    while (j < list.size() && list[j] != ' ' && list[j] != '\n' && list[j] != '\t')
      ++j;
    if (list.substr(i, j - i) == "tls") return true;
    i = j;
  }
  return false;
}

std::string ktls_probe::reason() const {
  if (usable()) return "kTLS available (tls ULP present, OpenSSL built with KTLS)";
  std::string s = "userspace TLS: ";
  if (!kernel_ulp) {
    s += "kernel has no tls ULP (tcp_available_ulp: \"" + available_ulps + "\")";
  }
  if (!openssl_ktls) s += kernel_ulp ? "OpenSSL built without KTLS" : "; OpenSSL without KTLS";
  return s;
}

ktls_decision decide_ktls(const ktls_probe& p, bool enabled_in_context, bool socket_below) {
  ktls_decision d;
  if (!p.usable()) {
    d.reason = p.reason();
  } else if (!enabled_in_context) {
    d.reason = "userspace TLS: kTLS available but tls_options.enable_ktls is off";
  } else if (!socket_below) {
    d.reason = "userspace TLS: kTLS available but no socket directly below (needs plain_transport)";
  } else {
    d.try_ktls = true;
    d.reason = "kTLS candidate: handshake over a socket BIO with SSL_OP_ENABLE_KTLS";
  }
  return d;
}

std::string ktls_confirm_reason(bool send_active, bool recv_active, std::string_view version,
                                std::string_view cipher) {
  const std::string what = std::string(version) + " " + std::string(cipher);
  if (send_active) {
    return std::string("kTLS: OpenSSL moved sending into the kernel for ") + what +
           (recv_active ? " (receive too)" : " (receive stays in OpenSSL)") +
           "; file ranges go by SSL_sendfile";
  }
  return "userspace TLS: tls ULP present but OpenSSL did not enable kTLS send for " + what +
         " (BIO_get_ktls_send = 0)";
}

const ktls_probe& probe_ktls() {
  static const ktls_probe p = [] {
    ktls_probe r;
    std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
    std::stringstream ss;
    ss << f.rdbuf();
    r.available_ulps = ss.str();
    while (!r.available_ulps.empty() &&
           (r.available_ulps.back() == '\n' || r.available_ulps.back() == ' ')) {
      r.available_ulps.pop_back();
    }
    r.kernel_ulp = ulp_list_has_tls(r.available_ulps);
#ifndef OPENSSL_NO_KTLS
    r.openssl_ktls = true;
#endif
    return r;
  }();
  return p;
}

bool ktls_send_active(SSL* ssl) noexcept {
#ifndef OPENSSL_NO_KTLS
  BIO* b = SSL_get_wbio(ssl);
  return b && BIO_get_ktls_send(b);
#else
  (void)ssl;
  return false;
#endif
}

bool ktls_recv_active(SSL* ssl) noexcept {
#ifndef OPENSSL_NO_KTLS
  BIO* b = SSL_get_rbio(ssl);
  return b && BIO_get_ktls_recv(b);
#else
  (void)ssl;
  return false;
#endif
}

std::size_t ktls_send_file(SSL* ssl, int fd, off_t offset, std::size_t len, std::error_code& ec) {
  ec.clear();
  ERR_clear_error();
  const ossl_ssize_t n = SSL_sendfile(ssl, fd, offset, len, 0);
  if (n >= 0) return static_cast<std::size_t>(n);
  // OpenSSL 3.0: EAGAIN/EINTR/EBUSY set the BIO's retry flag; another errno is raised as
  // ERR_LIB_SYS; no kTLS send on the BIO is SSL_R_UNINITIALIZED.
  const unsigned long e = ERR_peek_error();
  if (BIO* b = SSL_get_wbio(ssl); b && BIO_should_retry(b)) {
    ec = std::make_error_code(std::errc::resource_unavailable_try_again);
  } else if (e && ERR_GET_LIB(e) == ERR_LIB_SYS) {
    ec = std::error_code(ERR_GET_REASON(e), std::system_category());
  } else {
    ec = errc::tls_protocol;
  }
  ERR_clear_error();
  return 0;
}

}  // namespace pagewire::filters
