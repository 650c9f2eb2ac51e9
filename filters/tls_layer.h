#pragma once

/// tls_layer: TLS as a stream layer (server or client side). Plaintext written above leaves
/// as records through the layer below; records read below come up as plaintext.
///
/// Handshake: async_handshake(token) runs it explicitly (void(std::error_code)); a read or
/// write before that starts it implicitly and waits for it. The whole handshake must finish
/// within options.handshake_timeout (errc::handshake_timeout), and every failure is a
/// filters::errc: plain_http (a server's peer sent an HTTP request line instead: a plain-HTTP
/// client on the TLS port, which the server may answer in plain text on the transport below),
/// tls_handshake (no shared cipher, bytes that are not TLS), truncated (the peer vanished
/// mid-record), ...
///
/// Writes: plaintext is encrypted in trips of at most `piece_bytes` (the layer's action
/// returns keep between trips), records of record_plaintext(mss) bytes so each fills whole
/// packets; slices back to back in memory make one record in place; with pagewire's record
/// sealer (TLS 1.3) a record is also sealed in place from up to 16 scattered slices (pages of
/// the page cache); more and smaller slices, and every scattered record under OpenSSL's
/// writer, are gathered into one record first (a counted copy, reason gather). File
/// ranges are read through fs::page_cache. SSL_write partial writes and WANT_WRITE (pool
/// exhausted) send what exists and retry with the same bytes. The application's completion
/// reports plaintext bytes: this layer's action maps the ciphertext sent below to the
/// plaintext it carried.
///
/// A write that fails (a file range it cannot read, no page) reports the bytes whose records
/// went below, those sealed before the failure included (they go out as it fails). A file
/// range that ended early (the file shrank: errc::truncated) leaves a message cut short, so
/// later writes fail and shutdown() ends the stream below after those records, without
/// close_notify (the peer reads errc::truncated). When the
/// pool refused a page for the next record: with pagewire's record sealer nothing of that
/// record was sealed, and the stream goes on (the next write may offer other bytes). Under
/// OpenSSL's writer (TLS 1.2, or the sealer off) OpenSSL holds an encrypted record of that
/// write's bytes, which it would send for the next write's: later writes fail with
/// errc::pool_exhausted and send nothing, shutdown() ends the stream below without
/// close_notify (the peer reads errc::truncated) and reports that error, and the connection
/// is to be closed.
///
/// kTLS (ktls.h): when the probe finds the kernel's tls ULP and an OpenSSL built with KTLS,
/// the context allows it and the layer below is a plain_transport, the handshake runs over a
/// socket BIO on that socket with SSL_OP_ENABLE_KTLS. Afterwards, if OpenSSL confirms
/// (BIO_get_ktls_send), the path is "ktls": memory goes by SSL_write and file ranges by
/// SSL_sendfile (the body never enters user space), waiting for the socket with POLL_ADD
/// operations; reads are SSL_read on the socket. If OpenSSL refuses (cipher, kernel), the
/// connection moves to the memory BIO and continues as userspace TLS. Otherwise the
/// userspace path runs from the start. stats() says which path and why. The kTLS path is
/// untested on a real kTLS kernel (none available); tests inject the probe and OpenSSL's
/// answer (tls_layer_options::ktls).
///
/// Userspace TLS 1.3: records are sealed by pagewire straight into pool pages (no copy on
/// the write side; tls_engine.h, tls_options::record_sealer), reads stay with OpenSSL.
///
/// Reads: over a plain_transport, ciphertext is read raw (net's receive buffer, no copy into
/// pool pages) and OpenSSL's BIO copies it straight into its record buffer.
///
/// Shutdown sends close_notify, then shuts the layer below. A read after the peer's
/// close_notify is errc::eof; a FIN without close_notify is errc::truncated.
/// Threading, lifetime: stream.h. The tls_context, pool and cache outlive the layer.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <pagewire/filters/ktls.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/filters/stream.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_engine.h>
#include <pagewire/filters/trip_layer.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/runtime/timer.h>

namespace pagewire::filters {

struct tls_layer_options {
  std::chrono::milliseconds handshake_timeout{10'000};
  /// Packet size records are fitted to (TCP MSS); 0: 16 KiB records.
  std::size_t mss = 0;
  /// Plaintext bytes per trip below (bounds ciphertext memory per write).
  std::size_t piece_bytes = 512 * 1024;
  /// Plaintext bytes per read at most.
  std::size_t read_output_limit = 256 * 1024;
  /// For tests: the kTLS probe and OpenSSL's confirmation (ktls.h); null = the real ones.
  ktls_hooks ktls;
};

enum class tls_path : std::uint8_t { userspace, ktls };

struct tls_stats {
  tls_path path = tls_path::userspace;
  std::string ktls_reason;      ///< why that path (ktls.h)
  bool ktls_attempted = false;  ///< the handshake ran over a socket BIO with kTLS enabled
  std::uint64_t plaintext_out = 0;
  std::uint64_t ciphertext_out = 0;
  std::uint64_t plaintext_in = 0;
  std::uint64_t gathered = 0;   ///< plaintext bytes copied to build full records
  std::uint64_t coalesced = 0;  ///< record bytes taken from several slices in place (no copy)
  std::size_t record_plaintext = 0;
  bool record_sealer = false;        ///< pagewire seals the records sent (tls_engine.h)
  std::string record_sealer_reason;  ///< why (or why not)
  std::uint64_t key_updates_sent = 0;
  std::uint64_t peer_key_update_requests = 0;
  std::uint64_t openssl_writes_after_takeover = 0;  ///< stays 0
  std::uint64_t alerts_resealed = 0;  ///< OpenSSL's alerts after read errors, sealed by us
};

class tls_layer final : public trip_layer {
 public:
  tls_layer(std::unique_ptr<stream> lower, std::shared_ptr<tls_context> ctx,
            const tls_layer_options& options, fs::page_pool& pool, fs::page_cache* cache,
            std::error_code& ec);
  ~tls_layer() override;

  template <class Token>
  auto async_handshake(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          using Op =
              detail::waiter_op<std::decay_t<decltype(handler)>, done_waiter, std::error_code>;
          detail::initiation_guard g;
          start_handshake(*new Op(std::move(handler), context(), g));
          Op::release_guard(g);
        },
        token);
  }
  void start_handshake(done_waiter& w);

  void start_write(write_request& r) override;
  void start_read(read_waiter& w) override;
  void start_shutdown(done_waiter& w) override;
  std::string describe() const override;

  bool established() const noexcept { return state_ == state::established; }
  const tls_engine& engine() const noexcept { return engine_; }
  tls_stats stats() const;

 private:
  enum class state : std::uint8_t { idle, handshaking, established, failed };
  enum class after_control : std::uint8_t { nothing, handshake, shutdown };

  struct reader final : read_waiter {
    tls_layer* self = nullptr;
  };
  struct raw_reader final : raw_read_waiter {
    tls_layer* self = nullptr;
    bool handshake = false;
  };
  /// Waits for the socket (socket-BIO engine): a POLL_ADD whose completion resumes `then`.
  enum class wait_for : std::uint8_t { handshake, read, write, shutdown };
  struct socket_wait final : runtime::operation {
    tls_layer* self = nullptr;
    int fd = -1;
    unsigned events = 0;
    wait_for then = wait_for::read;
    void prepare(io_uring_sqe* sqe) override { io_uring_prep_poll_add(sqe, fd, events); }
    void complete(int result, unsigned) override { self->on_socket_ready(then, result); }
  };

  void begin_handshake();
  void wait_socket(socket_wait& w, unsigned events, wait_for then);
  void on_socket_ready(wait_for then, int result);
  std::error_code settle_path();
  void ktls_pump();
  void ktls_close();
  void hs_step();
  void hs_continue();
  void hs_done(std::error_code ec);
  static void on_hs_read(read_waiter* w, std::error_code ec, fs::chain&& data);
  void hs_input(std::error_code ec);
  void read_below(bool handshake);
  static void on_raw_read(raw_read_waiter* w, std::error_code ec, net::received data);
  void send_control(after_control then);
  static void on_control_sent(void* arg, std::error_code ec, std::uint64_t bytes);

  void pump() override;
  bool next_plaintext(std::span<const std::byte>& span, bool& staged);
  /// The next record's plaintext for the record sealer, read in place.
  struct record_pieces {
    static constexpr std::size_t kMax = 16;
    std::array<std::span<const std::byte>, kMax> spans;
    std::size_t count = 0;   // spans used
    std::size_t slices = 0;  // slices they come from
    std::size_t total = 0;   // bytes
  };
  bool next_pieces(record_pieces& p) const;
  runtime::action_result on_trip_done(int result) override;

  void read_step();
  static void on_lower_read(read_waiter* w, std::error_code ec, fs::chain&& data);
  void data_input(std::error_code ec);
  void deliver_read(std::error_code ec, fs::chain&& data);

  tls_layer_options options_;
  fs::page_cache* cache_;
  plain_transport* raw_lower_ = nullptr;  // the lower stream when it is a socket transport
  ktls_decision decision_;
  tls_engine engine_;
  bool ktls_ = false;  // path ktls: SSL_write / SSL_sendfile on the socket
  tls_stats stats_;
  state state_ = state::idle;
  std::error_code hs_error_;
  tls_engine::status hs_status_ = tls_engine::status::ok;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
  runtime::timer timer_;
  bool timed_out_ = false;
  done_waiter* hw_ = nullptr;
  reader hs_reader_;
  raw_reader raw_reader_;
  socket_wait rwait_;  // handshake and reads (socket-BIO engine)
  socket_wait wwait_;  // writes and close_notify
  std::size_t record_ = 16384;

  // control records (handshake flights, post-handshake messages, close_notify). On the
  // heap: a control record can still be in flight below when the layer is destroyed (the
  // application only waits for its own operations), so it deletes itself then.
  struct control_request;
  control_request* ctl_;
  bool ctl_busy_ = false;
  after_control ctl_then_ = after_control::nothing;

  // write side (the write in flight: trip_layer)
  bool write_parked_ = false;
  std::vector<std::byte> staging_;  // gathered plaintext for one record
  std::size_t staged_ = 0;          // bytes in staging_
  std::size_t staged_off_ = 0;      // bytes of staging_ accepted by SSL_write

  // read side
  read_waiter* rw_ = nullptr;
  bool read_parked_ = false;
  reader reader_;
  page_writer rout_;
  fs::chain delivered_;  // the last read's data, handed to the reader by rvalue reference
  bool lower_eof_ = false;
  bool peer_closed_ = false;
  std::error_code read_error_;

  // shutdown
  done_waiter* sw_ = nullptr;
};

}  // namespace pagewire::filters
