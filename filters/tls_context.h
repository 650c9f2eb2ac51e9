#pragma once

/// tls_context: the shared, immutable TLS configuration (an OpenSSL 3 SSL_CTX) for one
/// side: a server's certificate and key (PEM files), or a client's trust settings. ALPN
/// "http/1.1" is offered/selected (a server refuses a client whose ALPN list lacks it with
/// the fatal no_application_protocol alert, RFC 7301 §3.2; a client sending no ALPN is
/// served); TLS 1.2 and 1.3 are enabled (configurable). A server
/// resumes sessions: TLS 1.2 by session ID (the SSL_CTX's cache) or ticket, TLS 1.3 by the
/// `session_tickets` tickets it sends at the end of each full handshake (stateless, sealed
/// under a key OpenSSL draws once per context, so every thread sharing the context accepts
/// them). Those are handshake writes: after the handshake nothing but a KeyUpdate answer or
/// an alert is written on a read. Renegotiation is refused. SSL_OP_ENABLE_KTLS
/// is set when kTLS is asked for, so OpenSSL offloads records to the kernel where a
/// socket BIO and the kernel's `tls` ULP allow it (ktls.h).
///
/// Ownership: shared by every tls_layer built from it (std::shared_ptr). Thread-safe once
/// built (SSL_CTX is). Errors: create() returns null and a filters::errc (tls_certificate
/// for a missing/unreadable/mismatched certificate or key, with the OpenSSL reason in
/// `detail`), or EINVAL for bad options.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

typedef struct ssl_ctx_st SSL_CTX;

namespace pagewire::filters {

enum class tls_role : unsigned char { server, client };

struct tls_options {
  tls_role role = tls_role::server;
  /// Server: PEM certificate chain and private key (required).
  std::string cert_file;
  std::string key_file;
  /// Client: verify the server against this CA file (PEM); empty = no verification.
  std::string ca_file;
  /// Client: SNI host name (and the name verified when ca_file is set).
  std::string server_name;
  /// TLS 1.2 ciphers (OpenSSL cipher list) and TLS 1.3 suites; empty = OpenSSL defaults.
  std::string cipher_list;
  std::string ciphersuites;
  /// 12 or 13: the lowest and highest protocol versions.
  int min_version = 12;
  int max_version = 13;
  /// Server: TLS 1.3 session tickets sent after each full handshake (0: none, so TLS 1.3
  /// clients cannot resume; TLS 1.2 tickets are off too, session IDs still resume).
  unsigned session_tickets = 2;
  /// Offer/require ALPN "http/1.1".
  bool alpn_http11 = true;
  /// Ask OpenSSL for kernel TLS (SSL_OP_ENABLE_KTLS); used only by socket-BIO engines.
  bool enable_ktls = true;
  /// TLS 1.3 over the memory BIO: pagewire seals application-data records itself
  /// (tls13_record_sealer) straight into pool pages once the handshake is done; off, or
  /// TLS 1.2, or a socket-BIO engine: OpenSSL's SSL_write does.
  bool record_sealer = true;
  /// Records under one key before the sealer updates it itself (0: the cipher's bound,
  /// 2^24 for AES-GCM). For tests.
  std::uint64_t records_per_key = 0;
};

class tls_context {
 public:
  static std::shared_ptr<tls_context> create(const tls_options& o, std::error_code& ec,
                                             std::string* detail = nullptr);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  SSL_CTX* native() const noexcept { return ctx_; }
  const tls_options& options() const noexcept { return options_; }

 private:
  tls_context(SSL_CTX* c, tls_options o) : ctx_(c), options_(std::move(o)) {}
  SSL_CTX* ctx_;
  tls_options options_;
};

/// The last OpenSSL error queue entries as text (and clears the queue).
std::string openssl_errors();

}  // namespace pagewire::filters
