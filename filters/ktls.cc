#include <cerrno>
#include <fstream>
#include <sstream>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

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
  const ossl_ssize_t n = SSL_sendfile(ssl, fd, offset, len, 0);
  if (n >= 0) return static_cast<std::size_t>(n);
  const int e = errno;
  ERR_clear_error();
  ec = std::error_code(e ? e : EIO, std::system_category());
  return 0;
}

}  // namespace pagewire::filters
