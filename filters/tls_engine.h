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
/// Status codes follow OpenSSL's: want_read (feed more ciphertext), want_write (the pool
/// refused a page: send output, then call again with the same bytes), closed (the peer's
/// close_notify), error (ec: filters::errc::tls_handshake before the handshake finished,
/// tls_protocol after, truncated when the ciphertext ended without close_notify).
/// Threading: one thread at a time. Lifetime: the pool and context outlive the engine.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/fs/chain.h>
#include <pagewire/net/recv_buffer_ring.h>

typedef struct ssl_st SSL;

namespace pagewire::filters {

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
  /// The peer's byte stream ended (FIN).
  void feed_eof() noexcept { eof_ = true; }
  std::uint64_t buffered_input() const noexcept { return in_.size() + raw_bytes_; }

  /// Advances the handshake. ok once established.
  status handshake(std::error_code& ec);
  bool established() const noexcept { return established_; }

  /// Encrypts up to plain.size() bytes into records; `accepted` = bytes taken (a
  /// want_write leaves the rest to be offered again, same bytes first).
  status encrypt(std::span<const std::byte> plain, std::size_t& accepted, std::error_code& ec);
  /// Decrypts into `out` until `limit` bytes were produced or input runs out (want_read).
  status decrypt(page_writer& out, std::size_t limit, std::error_code& ec);
  /// Queues close_notify into output().
  status close(std::error_code& ec);

  /// Ciphertext produced and not yet taken.
  page_writer& output() noexcept { return out_; }

  /// Plaintext bytes per record so that a record fills whole packets of `mss` bytes
  /// (0: the 16 KiB maximum), for the negotiated version and cipher.
  std::size_t record_plaintext(std::size_t mss) const noexcept;
  /// Applies it (SSL_set_max_send_fragment); call after the handshake.
  void set_record_plaintext(std::size_t bytes) noexcept;
  std::size_t record_overhead() const noexcept;

  /// Whether the SSL talks to a socket BIO (kTLS candidate) rather than the memory BIO.
  bool on_socket() const noexcept { return on_socket_; }
  /// Moves an established connection from the socket BIO to the memory BIO (OpenSSL kept
  /// records in user space, so pagewire's pages and transport carry them from now on).
  bool use_memory_bio() noexcept;

  std::string_view alpn() const noexcept;
  std::string_view version() const noexcept;
  std::string_view cipher() const noexcept;
  SSL* native() const noexcept { return ssl_; }

 private:
  friend struct bio_glue;
  status map_error(int rc, std::error_code& ec);

  std::shared_ptr<tls_context> ctx_;
  SSL* ssl_ = nullptr;
  page_writer out_;
  fs::chain in_;
  std::deque<net::received> raw_;  // read after in_; the front's first raw_off_ bytes are consumed
  std::size_t raw_off_ = 0;
  std::size_t raw_bytes_ = 0;  // unconsumed bytes in raw_
  bool eof_ = false;
  bool established_ = false;
  bool on_socket_ = false;
};

}  // namespace pagewire::filters
