#include <algorithm>
#include <cstring>
#include <utility>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/tls_engine.h>
#include <pagewire/fs/stats.h>

namespace pagewire::filters {

// The custom BIO: its data pointer is the engine.
struct bio_glue {
  static int write_ex(BIO* b, const char* data, size_t len, size_t* written) {
    auto* e = static_cast<tls_engine*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (e->sealer_) {  // the stream's keys are the sealer's now: OpenSSL's record is void
      // Its own KeyUpdate answer (announced by the message callback) is expected: not counted.
      if (!std::exchange(e->openssl_key_update_, false)) {
        ++e->sealer_stats_.openssl_writes_after_takeover;
      }
      *written = len;
      return 1;
    }
    if (e->secrets_) e->tap_written(reinterpret_cast<const unsigned char*>(data), len);
    size_t done = 0;
    while (done < len) {
      auto space = e->out_.reserve();
      if (space.empty()) break;
      const size_t n = std::min(space.size(), len - done);
      std::memcpy(space.data(), data + done, n);
      e->out_.commit(n);
      done += n;
    }
    if (done) fs::stats::record_copy(done, fs::copy_reason::tls);
    if (done == 0 && len) {
      BIO_set_retry_write(b);
      return 0;
    }
    *written = done;
    return 1;
  }

  static int read_ex(BIO* b, char* data, size_t len, size_t* readbytes) {
    auto* e = static_cast<tls_engine*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    size_t done = 0;
    while (done < len && !e->in_.empty()) {
      const fs::slice& s = std::get<fs::slice>(e->in_.front());
      const size_t n = std::min<size_t>(s.size(), len - done);
      std::memcpy(data + done, s.data(), n);
      e->in_.consume(n);
      done += n;
    }
    while (done < len && e->raw_head_ < e->raw_.size()) {
      net::received& r = e->raw_[e->raw_head_];
      const size_t n = std::min<size_t>(r.size() - e->raw_off_, len - done);
      std::memcpy(data + done, r.data() + e->raw_off_, n);
      e->raw_off_ += n;
      e->raw_bytes_ -= n;
      done += n;
      if (e->raw_off_ == r.size()) {
        r.release();  // gives the buffer back to net
        e->raw_off_ = 0;
        if (++e->raw_head_ == e->raw_.size()) {
          e->raw_.clear();
          e->raw_head_ = 0;
        }
      }
    }
    if (done == 0) {
      if (!e->eof_) BIO_set_retry_read(b);
      e->eof_read_ = e->eof_;
      *readbytes = 0;
      return 0;
    }
    fs::stats::record_copy(done, fs::copy_reason::tls);
    *readbytes = done;
    return 1;
  }

  static long ctrl(BIO* b, int cmd, long, void*) {
    auto* e = static_cast<tls_engine*>(BIO_get_data(b));
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;
      case BIO_CTRL_PENDING:
        return static_cast<long>(e->buffered_input());
      case BIO_CTRL_EOF:
        return e->eof_ && e->buffered_input() == 0;
      default:
        return 0;
    }
  }

  static int create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
  }

  static BIO_METHOD* method() {
    static BIO_METHOD* m = [] {
      BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pagewire");
      BIO_meth_set_write_ex(bm, &bio_glue::write_ex);
      BIO_meth_set_read_ex(bm, &bio_glue::read_ex);
      BIO_meth_set_ctrl(bm, &bio_glue::ctrl);
      BIO_meth_set_create(bm, &bio_glue::create);
      return bm;
    }();
    return m;
  }
};

tls_engine::tls_engine(std::shared_ptr<tls_context> ctx, fs::page_pool& pool, std::error_code& ec,
                       int socket_fd)
    : ctx_(std::move(ctx)), out_(pool), on_socket_(socket_fd >= 0) {
  ec.clear();
  ssl_ = SSL_new(ctx_->native());
  BIO* bio = nullptr;
  if (ssl_) bio = on_socket_ ? BIO_new_socket(socket_fd, BIO_NOCLOSE) : BIO_new(bio_glue::method());
  if (!bio) {
    ec = std::make_error_code(std::errc::not_enough_memory);
    return;
  }
  if (!on_socket_) BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways; SSL owns it
  const tls_options& o = ctx_->options();
  if (o.record_sealer && !on_socket_ && o.max_version >= 13) {
    if (tls13_secrets::install(ctx_->native())) {
      secrets_ = std::make_unique<tls13_secrets>(ssl_);
    } else {
      sealer_stats_.reason = "no keylog slot";
    }
  }
  if (o.role == tls_role::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!o.server_name.empty()) {
      SSL_set_tlsext_host_name(ssl_, o.server_name.c_str());
      if (!o.ca_file.empty()) SSL_set1_host(ssl_, o.server_name.c_str());
    }
  }
}

void tls_engine::feed(net::received ciphertext) {
  if (ciphertext.empty()) return;
  raw_bytes_ += ciphertext.size();
  if (raw_head_ > 0) {  // drop the buffers read already, so raw_ holds only unread ones
    raw_.erase(raw_.begin(), raw_.begin() + static_cast<std::ptrdiff_t>(raw_head_));
    raw_head_ = 0;
  }
  raw_.push_back(std::move(ciphertext));
}

bool tls_engine::use_memory_bio() noexcept {
  if (!on_socket_) return true;
  BIO* bio = BIO_new(bio_glue::method());
  if (!bio) return false;
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // frees the socket BIO (BIO_NOCLOSE: the fd stays open)
  on_socket_ = false;
  return true;
}

tls_engine::~tls_engine() {
  secrets_.reset();  // detaches from ssl_
  SSL_free(ssl_);
}

tls_engine::status tls_engine::map_error(int rc, std::error_code& ec) {
  const int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      ERR_clear_error();
      return status::want_read;
    case SSL_ERROR_WANT_WRITE:
      ERR_clear_error();
      return status::want_write;
    case SSL_ERROR_ZERO_RETURN:
      if (!eof_read_ || !established_) return status::closed;
      ec = errc::truncated;  // the FIN, not a close_notify (SSL_OP_IGNORE_UNEXPECTED_EOF)
      return status::error;
    default:
      break;
  }
  const unsigned long e = ERR_peek_error();
  const int reason = ERR_GET_REASON(e);
  if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING || (err == SSL_ERROR_SYSCALL && eof_)) {
    ec = errc::truncated;
  } else if (!established_ &&
             (reason == SSL_R_HTTP_REQUEST || reason == SSL_R_HTTPS_PROXY_REQUEST)) {
    ec = errc::plain_http;  // OpenSSL read "GET ", "POST ", "CONNECT"... as the first record
  } else {
    ec = established_ ? errc::tls_protocol : errc::tls_handshake;
  }
  ERR_clear_error();
  return status::error;
}

tls_engine::status tls_engine::handshake(std::error_code& ec) {
  if (established_) return status::ok;
  const int rc = SSL_do_handshake(ssl_);
  if (rc == 1) {
    established_ = true;
    take_over_writes();
    SSL_set_msg_callback(ssl_, &tls_engine::on_message);
    SSL_set_msg_callback_arg(ssl_, this);
    return status::ok;
  }
  return map_error(rc, ec);
}

tls_engine::status tls_engine::encrypt(std::span<const std::byte> plain, std::size_t& accepted,
                                       std::error_code& ec) {
  accepted = 0;
  if (plain.empty()) return status::ok;
  if (sealer_) {
    while (accepted < plain.size()) {
      const std::span<const std::byte> record =
          plain.subspan(accepted, std::min(record_bytes_, plain.size() - accepted));
      const status st = encrypt_record({&record, 1}, ec);
      if (st == status::want_write && accepted > 0) return status::ok;
      if (st != status::ok) return st;
      accepted += record.size();
    }
    return status::ok;
  }
  const int rc = SSL_write_ex(ssl_, plain.data(), plain.size(), &accepted);
  if (rc == 1) return status::ok;
  return map_error(rc, ec);
}

tls_engine::status tls_engine::encrypt_record(tls13_record_sealer::pieces plain,
                                              std::error_code& ec) {
  if (fatal_alert_sealed_ || close_notify_sealed_) {  // our side ended: as SSL_write refuses
    ec = errc::tls_protocol;
    return status::error;
  }
  if (const status st = answer_key_update(ec); st != status::ok) return st;
  // Nothing to send seals nothing, as in encrypt(): peers count empty records as an attack
  // (OpenSSL fails the 33rd in a row, "record too small").
  if (std::all_of(plain.begin(), plain.end(), [](const auto& piece) { return piece.empty(); }))
    return status::ok;
  const auto r = sealer_->seal(out_, plain);
  if (r == tls13_record_sealer::result::want_pages) return status::want_write;
  if (r != tls13_record_sealer::result::ok) {
    ec = errc::tls_protocol;
    return status::error;
  }
  sealer_stats_.key_updates_sent = sealer_->key_updates();
  return status::ok;
}

tls_engine::status tls_engine::decrypt(page_writer& out, std::size_t limit, std::error_code& ec) {
  const status st = decrypt_records(out, limit, ec);
  if (sealer_ && peer_update_pending_) {
    // The answer to a KeyUpdate read just now goes out even if we have nothing to send;
    // a refused page leaves it to the next encrypt() or decrypt().
    std::error_code aec;
    if (answer_key_update(aec) == status::error && st != status::error) {
      ec = aec;
      return status::error;
    }
  }
  return st;
}

tls_engine::status tls_engine::decrypt_records(page_writer& out, std::size_t limit,
                                               std::error_code& ec) {
  std::size_t produced = 0;
  while (produced < limit) {
    auto space = out.reserve();
    if (space.empty()) return status::want_write;
    std::size_t n = 0;
    const std::size_t ask = std::min(space.size(), limit - produced);
    const int rc = SSL_read_ex(ssl_, space.data(), ask, &n);
    if (rc != 1) return map_error(rc, ec);
    out.commit(n);
    fs::stats::record_copy(n, fs::copy_reason::tls);  // SSL_read copies the record out
    produced += n;
  }
  return status::ok;
}

void tls_engine::feed_eof() noexcept {
  eof_ = true;
  if (established_ && !on_socket_) SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

tls_engine::status tls_engine::close(std::error_code& ec) {
  if (fatal_alert_sealed_ || close_notify_sealed_) return status::ok;
  if (sealer_) {
    if (const status st = answer_key_update(ec); st != status::ok) {
      if (st == status::want_write) ec = errc::pool_exhausted;
      return status::error;
    }
    const auto r = sealer_->seal_close_notify(out_);
    if (r == tls13_record_sealer::result::ok) {
      close_notify_sealed_ = true;
      return status::ok;
    }
    ec = r == tls13_record_sealer::result::want_pages ? errc::pool_exhausted : errc::tls_protocol;
    return status::error;
  }
  const int rc = SSL_shutdown(ssl_);
  if (rc >= 0) return status::ok;  // 0: sent, the peer's not yet seen; 1: both done
  return map_error(rc, ec);
}

std::size_t tls_engine::record_overhead() const noexcept {
  // Header 5 + AEAD tag 16; TLS 1.3 adds the inner content type, TLS 1.2 GCM an 8-byte
  // explicit nonce (ChaCha20-Poly1305 in 1.2 has none).
  if (SSL_version(ssl_) == TLS1_3_VERSION) return 5 + 16 + 1;
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  const bool chacha = c && std::strstr(SSL_CIPHER_get_name(c), "CHACHA20") != nullptr;
  return chacha ? 5 + 16 : 5 + 8 + 16;
}

std::size_t tls_engine::max_record_plaintext() const noexcept {
  // RFC 6066 4: a peer that asked for max_fragment_length (granted by OpenSSL, which honours
  // it in SSL_write) answers a longer record with record_overflow.
  const SSL_SESSION* s = SSL_get_session(ssl_);
  const unsigned mode = s ? SSL_SESSION_get_max_fragment_length(s) : 0;
  if (mode >= TLSEXT_max_fragment_length_512 && mode <= TLSEXT_max_fragment_length_4096) {
    return std::size_t{512} << (mode - TLSEXT_max_fragment_length_512);
  }
  return tls13_record_sealer::kMaxPlaintext;
}

std::size_t tls_engine::record_plaintext(std::size_t mss) const noexcept {
  const std::size_t max = max_record_plaintext();
  if (mss == 0) return max;
  const std::size_t overhead = record_overhead();
  const std::size_t packets = (max + overhead) / mss;
  if (packets == 0) return max;
  return std::min(max, std::max<std::size_t>(512, packets * mss - overhead));
}

void tls_engine::set_record_plaintext(std::size_t bytes) noexcept {
  record_bytes_ = std::min(bytes, max_record_plaintext());
  SSL_set_max_send_fragment(ssl_, static_cast<long>(bytes));
}

// ---- the record sealer -----------------------------------------------------------------

// Splits what OpenSSL writes into records; once our write secret is known, keeps each
// application_data-typed record (every TLS 1.3 encrypted record) whole, up to kTapLimit.
void tls_engine::tap_written(const unsigned char* p, std::size_t n) {
  constexpr std::size_t kTapLimit = 64 * 1024;
  const bool armed = !(ctx_->options().role == tls_role::server ? secrets_->server_application()
                                                                : secrets_->client_application())
                          .empty();
  while (n > 0) {
    if (tap_have_ < sizeof tap_header_) {
      const std::size_t take = std::min(n, sizeof tap_header_ - tap_have_);
      std::memcpy(tap_header_ + tap_have_, p, take);
      tap_have_ += take;
      p += take;
      n -= take;
      if (tap_have_ < sizeof tap_header_) break;
      tap_left_ = std::size_t{tap_header_[3]} << 8 | tap_header_[4];
      tap_keep_ = armed && tap_header_[0] == 0x17;
      if (tap_keep_ && tapped_bytes_ + sizeof tap_header_ + tap_left_ > kTapLimit) {
        tap_keep_ = false;
        tap_overflow_ = true;
      }
      if (tap_keep_) {
        const auto* h = reinterpret_cast<const std::byte*>(tap_header_);
        tapped_.emplace_back(h, h + sizeof tap_header_);
        tapped_bytes_ += sizeof tap_header_ + tap_left_;
      }
    }
    const std::size_t take = std::min(n, tap_left_);
    if (tap_keep_) {
      const auto* b = reinterpret_cast<const std::byte*>(p);
      tapped_.back().insert(tapped_.back().end(), b, b + take);
    }
    tap_left_ -= take;
    p += take;
    n -= take;
    if (tap_left_ == 0) tap_have_ = 0;
  }
}

// Records sealed by OpenSSL under the application key (they open with sequence 0, 1, ...):
// the sealer goes on from there. The others were under the handshake key.
std::uint64_t tls_engine::count_openssl_records() {
  std::vector<std::byte> plain;
  for (const auto& r : tapped_) {
    tls13_record_sealer::content type;
    sealer_->open(r, plain, type);  // advances the sequence when it opens
  }
  tapped_.clear();
  tapped_bytes_ = 0;
  return sealer_->sequence();
}

void tls_engine::take_over_writes() {
  sealer_stats& st = sealer_stats_;
  if (!ctx_->options().record_sealer) {
    st.reason = "record_sealer off: OpenSSL seals";
    return;
  }
  if (on_socket_) {
    st.reason = "socket BIO (kTLS candidate): OpenSSL seals";
    return;
  }
  if (SSL_version(ssl_) != TLS1_3_VERSION) {
    st.reason = std::string(version()) + ": OpenSSL seals";
    secrets_.reset();
    return;
  }
  if (!secrets_) return;  // reason set at construction
  const bool server = ctx_->options().role == tls_role::server;
  const auto secret = server ? secrets_->server_application() : secrets_->client_application();
  if (secret.empty()) {
    st.reason = "traffic secret not captured (keylog callback replaced): OpenSSL seals";
    return;
  }
  if (tap_overflow_ || tap_have_ != 0) {
    st.reason = "OpenSSL's records before the takeover not counted: OpenSSL seals";
    return;
  }
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  std::string why;
  auto sealer = tls13_record_sealer::create(c ? SSL_CIPHER_get_protocol_id(c) : 0, secret, 0,
                                            ctx_->options().records_per_key, why);
  if (!sealer) {
    st.reason = why + " (" + std::string(cipher()) + "): OpenSSL seals";
    return;
  }
  sealer_ = std::move(sealer);
  record_bytes_ = std::min(record_bytes_, max_record_plaintext());
  st.start_sequence = count_openssl_records();
  st.active = true;
  st.reason = "TLS 1.3 " + std::string(cipher()) + ": records sealed by pagewire";
  secrets_.reset();
}

// After the handshake. Without the sealer: a fatal alert OpenSSL sent (close() then queues
// nothing, as with the sealer). With it: handshake messages OpenSSL reads: a KeyUpdate asking
// us to update our key too. Alerts OpenSSL sends (a fatal one after a read error: bad MAC, a
// truncated stream): the BIO dropped its record just before (the callback comes after the
// write), so the sealer seals the same alert instead and the write is not counted as a stray
// one.
void tls_engine::on_message(int write_p, int, int content_type, const void* buf, std::size_t len,
                            SSL*, void* arg) {
  const auto* m = static_cast<const unsigned char*>(buf);
  auto* e = static_cast<tls_engine*>(arg);
  if (!e->sealer_) {  // OpenSSL seals: a fatal alert it sent ended our side all the same
    if (write_p && content_type == SSL3_RT_ALERT && len == 2 && m[0] == SSL3_AL_FATAL) {
      e->fatal_alert_sealed_ = true;
    }
    return;
  }
  if (write_p && content_type == SSL3_RT_ALERT && len == 2 &&
      e->sealer_stats_.openssl_writes_after_takeover > 0) {
    --e->sealer_stats_.openssl_writes_after_takeover;
    ++e->sealer_stats_.alerts_resealed;
    if (m[0] == SSL3_AL_FATAL) e->fatal_alert_sealed_ = true;
    e->sealer_->seal(e->out_, std::as_bytes(std::span(m, 2)),
                     tls13_record_sealer::content::alert);  // a refused page: the alert is lost
    return;
  }
  if (content_type != SSL3_RT_HANDSHAKE || len != 5 || m[0] != SSL3_MT_KEY_UPDATE) return;
  if (write_p) {
    // OpenSSL's own answer to an earlier update_requested: it keeps one pending for its next
    // SSL_write, which never comes, and writes it when it reads the peer's next KeyUpdate.
    // The sealer answered already; the BIO drops the record, which reaches it after this
    // callback (OpenSSL buffers handshake writes until it flushes).
    e->openssl_key_update_ = true;
    return;
  }
  if (m[4] == SSL_KEY_UPDATE_REQUESTED) {
    ++e->sealer_stats_.peer_key_update_requests;
    e->peer_update_pending_ = true;
  }
}

tls_engine::status tls_engine::answer_key_update(std::error_code& ec) {
  if (!peer_update_pending_) return status::ok;
  if (fatal_alert_sealed_ || close_notify_sealed_) {  // nothing of ours follows those
    peer_update_pending_ = false;
    return status::ok;
  }
  const auto r = sealer_->seal_key_update(out_, false);
  if (r == tls13_record_sealer::result::want_pages) return status::want_write;
  if (r != tls13_record_sealer::result::ok) {
    ec = errc::tls_protocol;
    return status::error;
  }
  peer_update_pending_ = false;
  sealer_stats_.key_updates_sent = sealer_->key_updates();
  return status::ok;
}

std::string_view tls_engine::alpn() const noexcept {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(ssl_, &p, &n);
  return p ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view();
}

bool tls_engine::session_reused() const noexcept {
  return SSL_session_reused(ssl_) == 1;
}

std::string_view tls_engine::version() const noexcept {
  return SSL_get_version(ssl_);
}

std::string_view tls_engine::cipher() const noexcept {
  const SSL_CIPHER* c = SSL_get_current_cipher(ssl_);
  return c ? SSL_CIPHER_get_name(c) : "";
}

}  // namespace pagewire::filters
