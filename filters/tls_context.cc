#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/tls13_secrets.h>
#include <pagewire/filters/tls_context.h>

namespace pagewire::filters {
namespace {

constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  unsigned char* o = nullptr;
  if (SSL_select_next_proto(&o, outlen, kAlpn, sizeof kAlpn, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
    // RFC 7301 §3.2: no protocol in common -> the fatal no_application_protocol alert
    // (a client offering h2 alone cannot speak to us anyway; one offering no ALPN is served).
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = o;
  return SSL_TLSEXT_ERR_OK;
}

int version_of(int v) {
  return v == 12 ? TLS1_2_VERSION : v == 13 ? TLS1_3_VERSION : 0;
}

}  // namespace

std::string openssl_errors() {
  std::string s;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s;
}

std::shared_ptr<tls_context> tls_context::create(const tls_options& o, std::error_code& ec,
                                                 std::string* detail) {
  ec.clear();
  const int lo = version_of(o.min_version), hi = version_of(o.max_version);
  const bool server = o.role == tls_role::server;
  if (!lo || !hi || lo > hi || (server && (o.cert_file.empty() || o.key_file.empty()))) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  ERR_clear_error();
  SSL_CTX* c = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
  if (!c) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return nullptr;
  }
  std::shared_ptr<tls_context> self(new tls_context(c, o));
  auto fail = [&](errc e) {
    ec = e;
    if (detail) *detail = openssl_errors();
    ERR_clear_error();
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(c, lo);
  SSL_CTX_set_max_proto_version(c, hi);
  const unsigned tickets = server ? o.session_tickets : 0;
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | (tickets == 0 ? SSL_OP_NO_TICKET : 0) |
                             (o.enable_ktls ? SSL_OP_ENABLE_KTLS : 0));
  SSL_CTX_set_num_tickets(c, tickets);
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(c, 1);
  // Before the context is shared: engines then find the capturing keylog callback in place.
  if (o.record_sealer && hi == TLS1_3_VERSION) tls13_secrets::install(c);
  if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(c, o.cipher_list.c_str()) != 1) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(c, o.ciphersuites.c_str()) != 1) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return nullptr;
  }
  if (server) {
    if (SSL_CTX_use_certificate_chain_file(c, o.cert_file.c_str()) != 1) {
      return fail(errc::tls_certificate);
    }
    if (SSL_CTX_use_PrivateKey_file(c, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      return fail(errc::tls_certificate);
    }
    if (SSL_CTX_check_private_key(c) != 1) return fail(errc::tls_certificate);
    if (o.alpn_http11) SSL_CTX_set_alpn_select_cb(c, select_alpn, nullptr);
  } else {
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(c, o.ca_file.c_str(), nullptr) != 1) {
        return fail(errc::tls_certificate);
      }
      SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
    }
    if (o.alpn_http11 && SSL_CTX_set_alpn_protos(c, kAlpn, sizeof kAlpn) != 0) {
      return fail(errc::tls_handshake);
    }
  }
  return self;
}

tls_context::~tls_context() {
  SSL_CTX_free(ctx_);
}

}  // namespace pagewire::filters
