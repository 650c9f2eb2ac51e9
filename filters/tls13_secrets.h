#pragma once

/// tls13_secrets: the TLS 1.3 application traffic secrets (client and server, generation 0)
/// of one SSL, captured from OpenSSL's keylog callback (the CLIENT_TRAFFIC_SECRET_0 and
/// SERVER_TRAFFIC_SECRET_0 lines, taken when their client random is the SSL's). They let
/// pagewire seal records itself (tls13_record_sealer) once the handshake is done.
///
/// install() puts the capturing callback on an SSL_CTX once (tls_context::create does, before
/// the context is shared; tls_engine checks again); a callback installed there earlier keeps
/// getting every line (called first). One installed later replaces ours until the next
/// engine's check chains it in turn; meanwhile the secrets are missing (empty) and that
/// engine leaves sealing to OpenSSL.
///
/// Ownership: an object attaches itself to its SSL (ex_data) and detaches on destruction,
/// so it is destroyed before that SSL is freed. The secrets are wiped on destruction. Threading:
/// install() is thread-safe; an object is used by the thread that drives its SSL.

#include <array>
#include <cstddef>
#include <span>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace pagewire::filters {

class tls13_secrets {
 public:
  /// Installs the capturing keylog callback on `ctx` (idempotent). False if OpenSSL
  /// could not allocate its ex_data slot.
  static bool install(SSL_CTX* ctx);

  /// Starts capturing for `ssl` (its SSL_CTX must have install()ed).
  explicit tls13_secrets(SSL* ssl);
  ~tls13_secrets();
  tls13_secrets(const tls13_secrets&) = delete;
  tls13_secrets& operator=(const tls13_secrets&) = delete;

  /// The secret, empty until its keylog line came.
  std::span<const std::byte> client_application() const noexcept {
    return std::as_bytes(std::span(client_.data(), client_len_));
  }
  std::span<const std::byte> server_application() const noexcept {
    return std::as_bytes(std::span(server_.data(), server_len_));
  }

 private:
  static void on_keylog(const SSL* ssl, const char* line);
  void take(const SSL* ssl, const char* line);

  SSL* ssl_;
  std::array<unsigned char, 64> client_{};
  std::array<unsigned char, 64> server_{};
  std::size_t client_len_ = 0;
  std::size_t server_len_ = 0;
};

}  // namespace pagewire::filters
