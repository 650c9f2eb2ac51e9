#include "apps/zcbench/path_tls_raw.h"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "apps/zcbench/tls_credentials.h"

namespace zcbench {
namespace {

// Counts the socket BIO's reads and writes as system calls; the argument is send_counts.
long count_calls(BIO* b, int oper, const char*, size_t, int, long, int ret, size_t*) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN) || oper == (BIO_CB_WRITE | BIO_CB_RETURN)) {
    ++reinterpret_cast<send_counts*>(BIO_get_callback_arg(b))->syscalls;
  }
  return ret;
}

class tls_raw_sender final : public sender {
 public:
  tls_raw_sender(const transfer& t, const char* suite, std::error_code& ec) : t_(t) {
    const tls_files& files = tls_credentials_files();
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (ctx_ == nullptr || files.cert_file.empty() ||
        SSL_CTX_use_certificate_chain_file(ctx_, files.cert_file.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, files.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_set_ciphersuites(ctx_, suite) != 1 ||
        SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_num_tickets(ctx_, 0) != 1) {
      ERR_clear_error();
      ec = std::make_error_code(std::errc::invalid_argument);
      return;
    }
    ssl_ = SSL_new(ctx_);
    BIO* bio = ssl_ != nullptr ? BIO_new_socket(t.socket, BIO_NOCLOSE) : nullptr;
    if (bio == nullptr) {
      ec = std::make_error_code(std::errc::not_enough_memory);
      return;
    }
    BIO_set_callback_ex(bio, count_calls);
    SSL_set_bio(ssl_, bio, bio);
  }
  ~tls_raw_sender() override {
    SSL_free(ssl_);
    SSL_CTX_free(ctx_);
  }

  std::error_code send(send_counts& counts) override {
    BIO_set_callback_arg(SSL_get_wbio(ssl_), reinterpret_cast<char*>(&counts));
    ERR_clear_error();
    if (SSL_accept(ssl_) != 1) return failure(-1);
    const auto window = t_.src.memory;
    std::uint64_t offset = 0;
    while (offset < t_.src.total) {
      // One message: SSL_write of each piece up to the window's end (one piece mostly).
      std::uint64_t n = std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      while (n > 0) {
        const std::size_t at = static_cast<std::size_t>(offset % window.size());
        const int take = static_cast<int>(std::min<std::uint64_t>(n, window.size() - at));
        const int w = SSL_write(ssl_, window.data() + at, take);
        if (w <= 0) return failure(w);
        counts.bytes += static_cast<std::uint64_t>(w);
        offset += static_cast<std::uint64_t>(w);
        n -= static_cast<std::uint64_t>(w);
      }
    }
    SSL_shutdown(ssl_);  // close_notify; the peer's is not awaited
    ::shutdown(t_.socket, SHUT_WR);
    ++counts.syscalls;
    return {};
  }

 private:
  std::error_code failure(int rc) {
    const int err = SSL_get_error(ssl_, rc);
    const int saved = errno;
    ERR_clear_error();
    if (err == SSL_ERROR_SYSCALL && saved != 0) return {saved, std::system_category()};
    return std::make_error_code(std::errc::protocol_error);
  }

  transfer t_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

template <const char* Suite>
std::unique_ptr<sender> make(const transfer& t, std::error_code& ec) {
  ec.clear();
  auto s = std::make_unique<tls_raw_sender>(t, Suite, ec);
  if (ec) return nullptr;
  return s;
}

constexpr char kAes128[] = "TLS_AES_128_GCM_SHA256";
constexpr char kAes256[] = "TLS_AES_256_GCM_SHA384";
constexpr char kChacha[] = "TLS_CHACHA20_POLY1305_SHA256";

}  // namespace

const path tls_raw_aes128gcm_path{
    .name = "tls_raw_aes128gcm",
    .raw = "tls_raw_aes128gcm",
    .summary = "OpenSSL SSL_write() loop, TLS 1.3 AES-128-GCM, memory window (raw TLS)",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kAes128>,
};

const path tls_raw_aes256gcm_path{
    .name = "tls_raw_aes256gcm",
    .raw = "tls_raw_aes256gcm",
    .summary = "OpenSSL SSL_write() loop, TLS 1.3 AES-256-GCM, memory window (raw TLS)",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kAes256>,
};

const path tls_raw_chacha20_path{
    .name = "tls_raw_chacha20",
    .raw = "tls_raw_chacha20",
    .summary = "OpenSSL SSL_write() loop, TLS 1.3 ChaCha20-Poly1305, memory window (raw TLS)",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kChacha>,
};

}  // namespace zcbench
