#pragma once

/// tls_engine: one TLS connection's state (an OpenSSL SSL) with no I/O of its own. A
/// custom BIO connects it to pagewire memory: ciphertext the engine produces lands in pool
/// pages (output(), a page_writer), ciphertext received is fed in as a chain of slices.
/// The layer above (tls_layer) moves those bytes through the transport.
///
/// Copies, counted in fs::stats under copy_reason::tls: OpenSSL encrypts into its own
/// record buffer, and the BIO copies each record once into pool pages (write side); the
/// BIO copies received ciphertext once into OpenSSL's read buffer, and SSL_read copies
/// the decrypted record once into the caller's pages (read side). Encryption itself is
/// produced output, not a copy. (OpenSSL 3.0 also copies each record's plaintext into its
/// write buffer and encrypts it there; no public API avoids that, and it is not counted.)
///
/// TLS 1.3 over the memory BIO (tls_options::record_sealer, the default): once the
/// handshake is done, pagewire seals the records it sends itself (tls13_record_sealer) with
/// the traffic secret tls13_secrets captured, straight from the caller's plaintext into pool
/// pages: no copy on the write side. The first sequence number is the count of
/// application-key records OpenSSL already wrote (a server's session tickets), found by
/// opening the records that passed through the BIO. OpenSSL keeps the read side (SSL_read,
/// the peer's KeyUpdate included); a KeyUpdate with update_requested from the peer (seen by
/// the message callback) is answered by the sealer before its next record; close() seals
/// close_notify. OpenSSL never writes again: a write it still attempts is dropped, as the
/// stream's keys are no longer its own; an alert OpenSSL sends after a read error (seen by
/// the message callback) is sealed again by the sealer, OpenSSL's own answer to a KeyUpdate
/// request (written when it reads the peer's next KeyUpdate; the sealer answered) is dropped
/// too, anything else is counted (openssl_writes_after_takeover, expected to stay 0).
/// Otherwise (TLS 1.2, the option off, a socket BIO) SSL_write seals, as before.
///
/// Status codes follow OpenSSL's: want_read (feed more ciphertext), want_write (the pool
/// refused a page: send output, then call again with the same bytes), closed (the peer's
/// close_notify), error (ec: filters::errc::tls_handshake before the handshake finished,
/// tls_protocol after, truncated when the ciphertext ended without close_notify).
/// Threading: one thread at a time. Lifetime: the pool and context outlive the engine.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/tls13_record_sealer.h>
#include <pagewire/filters/tls13_secrets.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/fs/chain.h>
#include <pagewire/net/recv_buffer_ring.h>

typedef struct ssl_st SSL;

namespace pagewire::filters {

/// Who seals the records this engine sends, and what the sealer did.
struct sealer_stats {
  bool active = false;                              ///< pagewire's sealer owns the write side
  std::string reason;                               ///< why (or why not) the sealer
  std::uint64_t start_sequence = 0;                 ///< application records OpenSSL sealed first
  std::uint64_t key_updates_sent = 0;               ///< own and answering KeyUpdates
  std::uint64_t peer_key_update_requests = 0;       ///< peer KeyUpdates with update_requested
  std::uint64_t openssl_writes_after_takeover = 0;  ///< BIO writes dropped (stays 0)
  std::uint64_t alerts_resealed = 0;  ///< OpenSSL's alerts (after read errors) sealed by us
};

class tls_engine {
 public:
  enum class status : std::uint8_t { ok, want_read, want_write, closed, error };

  /// socket_fd < 0: the pagewire memory BIO (above). socket_fd >= 0: a socket BIO on that
  /// (non-blocking, not owned) socket, so that OpenSSL can offload records to kernel TLS
  /// (SSL_OP_ENABLE_KTLS, ktls.h); want_read/want_write then mean "wait for the socket".
  tls_engine(std::shared_ptr<tls_context> ctx, fs::page_pool& pool, std::error_code& ec,
             int socket_fd = -1);
  ~tls_engine();
  tls_engine(const tls_engine&) = delete;
  tls_engine& operator=(const tls_engine&) = delete;

  /// Ciphertext received from the peer (memory slices).
  void feed(fs::chain ciphertext) { in_.append(std::move(ciphertext)); }
  /// Ciphertext as the socket layer received it (no copy into pages first): the BIO reads
  /// it in place after any fed chain, and the view is released once consumed.
  void feed(net::received ciphertext);
  /// The peer's byte stream ended (FIN). After the handshake, an end without close_notify is
  /// errc::truncated from decrypt() and sends nothing: OpenSSL's own answer, a fatal
  /// decode_error alert, is turned off (SSL_OP_IGNORE_UNEXPECTED_EOF; this engine tells the
  /// two ends apart itself), so a client that closes without close_notify, as many do, gets
  /// no alert, and close() may still end our side with close_notify.
  void feed_eof() noexcept;
  std::uint64_t buffered_input() const noexcept { return in_.size() + raw_bytes_; }

  /// Advances the handshake. ok once established.
  status handshake(std::error_code& ec);
  bool established() const noexcept { return established_; }

  /// Encrypts up to plain.size() bytes into records; `accepted` = bytes taken (a
  /// want_write leaves the rest to be offered again, same bytes first).
  status encrypt(std::span<const std::byte> plain, std::size_t& accepted, std::error_code& ec);
  /// Whether encrypt_record() can be used: pagewire's record sealer writes (TLS 1.3 after the
  /// takeover), which reads plaintext where it lies.
  bool seals_in_place() const noexcept { return sealer_ != nullptr; }
  /// Seals the concatenation of `plain` (at most the record size set) as one record, each
  /// piece read in place; all or nothing: want_write when the pool has no page for it.
  /// Empty pieces alone seal no record (ok). Requires seals_in_place().
  status encrypt_record(tls13_record_sealer::pieces plain, std::error_code& ec);
  /// Decrypts into `out` until `limit` bytes were produced or input runs out (want_read).
  status decrypt(page_writer& out, std::size_t limit, std::error_code& ec);
  /// Queues close_notify into output(); queues nothing (ok) once a fatal alert or
  /// close_notify went out, which already ended our side (RFC 8446 6.1, 6.2). After either,
  /// encrypt() and encrypt_record() fail (errc::tls_protocol) and seal nothing, as SSL_write
  /// does under OpenSSL's writer, and a peer's KeyUpdate request goes unanswered.
  status close(std::error_code& ec);

  /// Ciphertext produced and not yet taken.
  page_writer& output() noexcept { return out_; }

  /// Plaintext bytes per record so that a record fills whole packets of `mss` bytes
  /// (0: the largest record), for the negotiated version and cipher. Never more than
  /// max_record_plaintext().
  std::size_t record_plaintext(std::size_t mss) const noexcept;
  /// The largest record plaintext the peer accepts: 16 KiB, or the max_fragment_length it
  /// asked for and OpenSSL granted (RFC 6066; 512 to 4096 bytes). Set by the handshake.
  std::size_t max_record_plaintext() const noexcept;
  /// Applies it (SSL_set_max_send_fragment; the sealer's records too, never above
  /// max_record_plaintext()); call after the handshake.
  void set_record_plaintext(std::size_t bytes) noexcept;
  std::size_t record_overhead() const noexcept;

  /// Whether the SSL talks to a socket BIO (kTLS candidate) rather than the memory BIO.
  bool on_socket() const noexcept { return on_socket_; }
  /// Moves an established connection from the socket BIO to the memory BIO (OpenSSL kept
  /// records in user space, so pagewire's pages and transport carry them from now on).
  bool use_memory_bio() noexcept;

  const sealer_stats& sealer() const noexcept { return sealer_stats_; }

  std::string_view alpn() const noexcept;
  /// The handshake resumed an earlier session (TLS 1.3 ticket, TLS 1.2 session ID or ticket).
  bool session_reused() const noexcept;
  std::string_view version() const noexcept;
  std::string_view cipher() const noexcept;
  SSL* native() const noexcept { return ssl_; }

 private:
  friend struct bio_glue;
  status map_error(int rc, std::error_code& ec);
  void take_over_writes();
  std::uint64_t count_openssl_records();
  void tap_written(const unsigned char* p, std::size_t n);
  status answer_key_update(std::error_code& ec);
  status decrypt_records(page_writer& out, std::size_t limit, std::error_code& ec);
  static void on_message(int write_p, int version, int content_type, const void* buf,
                         std::size_t len, SSL* ssl, void* arg);

  std::shared_ptr<tls_context> ctx_;
  SSL* ssl_ = nullptr;
  page_writer out_;
  fs::chain in_;
  // Read after in_, from raw_[raw_head_] on, whose first raw_off_ bytes are consumed. A vector
  // that keeps its storage (emptied once all is read, the read prefix dropped on each feed),
  // where a deque allocated now and then.
  std::vector<net::received> raw_;
  std::size_t raw_head_ = 0;
  std::size_t raw_off_ = 0;
  std::size_t raw_bytes_ = 0;  // unconsumed bytes in raw_
  bool eof_ = false;
  bool eof_read_ = false;  // OpenSSL asked the BIO for bytes past the peer's FIN
  bool established_ = false;
  bool on_socket_ = false;

  // The record sealer (TLS 1.3, memory BIO).
  std::unique_ptr<tls13_secrets> secrets_;
  std::unique_ptr<tls13_record_sealer> sealer_;
  sealer_stats sealer_stats_;
  std::size_t record_bytes_ = tls13_record_sealer::kMaxPlaintext;
  bool peer_update_pending_ = false;
  bool openssl_key_update_ = false;  // OpenSSL's KeyUpdate answer is on its way to the BIO
  // Either ends our side: nothing is sealed after it (encrypt fails, as SSL_write then does).
  bool fatal_alert_sealed_ = false;   // a fatal alert went out (ours, or OpenSSL's own)
  bool close_notify_sealed_ = false;  // close() sealed close_notify: no second one
  // Records OpenSSL writes once our write secret is known (before the takeover): the
  // candidates for application-key records it sealed itself.
  unsigned char tap_header_[5] = {};
  std::size_t tap_have_ = 0;   // header bytes of the current record seen
  std::size_t tap_left_ = 0;   // body bytes of the current record still to come
  bool tap_keep_ = false;      // the current record is kept
  bool tap_overflow_ = false;  // more than kTapLimit bytes of candidates
  std::vector<std::vector<std::byte>> tapped_;
  std::size_t tapped_bytes_ = 0;
};

}  // namespace pagewire::filters
