#pragma once

/// One client connection's HTTP/1.1 loop: receive -> parse (pipelined requests taken
/// in order from each received block) -> respond (head slice + file ranges appended to
/// one chain) -> send the chain (net::connection / transmit) -> receive again, until
/// the client closes, a response says "Connection: close", a timeout fires, or the
/// worker stops.
///
/// Receives are paused while a send is in flight: pipelined requests that arrived with
/// the same block are answered in the same send; later ones wait in the connection's
/// queue (backpressure). Timeouts: net::connection enforces header (per receive), idle
/// and send-progress timeouts; the session bounds each wait as a whole with the
/// connection's receive deadline: a request head must complete within header_timeout of its
/// first byte, the first request must begin within header_timeout of the accept (as nginx's
/// client_header_timeout), and the gap between requests must end within idle_timeout,
/// however the bytes trickle (over TLS: whatever records come that carry no request byte).
///
/// HTTPS (the worker has a tls_context): the session talks through a filters::tls_layer
/// over a filters::plain_transport over conn_; the handshake runs implicitly on the
/// first read and must finish within header_timeout; a plain-HTTP client on the TLS port
/// gets one plain-text 400 that says so, and any other failed handshake resets that one
/// connection. Plain HTTP has no filter layer at
/// all: one `if (tls_)` per receive and send, and file ranges go straight to net.
///
/// Ownership: the worker owns sessions (intrusive list); a session destroys itself
/// through worker::on_session_closed once its connection closed. Threading: the
/// worker's loop thread only. Errors: a failed send (or a file truncated while served)
/// closes the connection; other connections are untouched.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/sendfile_server/responder.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/net/connection.h>
#include <pagewire/runtime/task.h>

namespace pagewire::sendfile_server {

class worker;

class session {
 public:
  session(worker& w, int fd, std::string remote);
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void start();
  /// Graceful stop: close now when idle between requests, else after the response in
  /// flight (its bytes all go out).
  void stop_gracefully();
  /// Hard stop (the shutdown wait ran out): close now.
  void abort();

  // Intrusive list of the worker's sessions.
  session* prev = nullptr;
  session* next = nullptr;

 private:
  void receive();
  void on_receive(std::error_code ec, net::received r);
  void on_tls_receive(std::error_code ec, const fs::chain& plaintext);
  void answer_plain_http();
  /// Parses a received block and answers (or goes on receiving / closing).
  void process_input(std::span<const char> in);
  void after_input();
  void handle_block(std::span<const char> in);
  /// False when the request went to on-the-fly compression (asynchronous): the caller
  /// stops parsing and keeps the rest of the input in leftover_.
  bool handle_request(const http::request& req);
  /// Logs and counts `req`'s response (planned in pending_), and closes after it when it
  /// does not keep the connection or the worker is stopping.
  void finish_request(const http::request& req, const response_summary& sum);
  /// The connection closes once `req`'s response is out, which the client may not know yet.
  void close_after(const http::request& req);
  void start_compression();
  void on_compressed(std::error_code ec, fs::chain body);
  void resume_after_compression();
  void log(const http::request* req, const response_summary& sum);
  void flush();
  void on_sent(std::error_code ec, std::uint64_t bytes);
  /// How a connection ends. graceful: after what is owed (TLS: close_notify, then FIN).
  /// reset: abortive (SO_LINGER 0), what the socket still holds is dropped; for timeouts,
  /// failed sends and hard stops. cut: FIN right after what was sent, without close_notify,
  /// so that a TLS client too sees the stream end early; for a response that cannot be
  /// completed (its file shrank), whose bytes that exist must still arrive. graceful and cut
  /// close lingering (net::connection::async_lingering_close) while the client still sends.
  enum class close_mode : std::uint8_t { graceful, reset, cut };
  void close(close_mode mode = close_mode::graceful);
  void close_connection(close_mode mode);
  /// Adds what the connection's transmits did since the last call to the worker's path
  /// counters. Called per response only with --stats: /-/stats is their only reader.
  void count_paths();
  /// Hands the session back to the worker once the connection closed and nothing of
  /// ours (receive, send, compression) is still in flight.
  void maybe_finish();

  worker& w_;
  net::connection conn_;
  http::request_parser parser_;
  std::string remote_;
  net::transmit_stats seen_;  // path counters already added to the worker's
  fs::chain pending_;         // responses produced and not yet handed to a send
  std::uint64_t pending_requests_ = 0;
  std::chrono::steady_clock::time_point head_started_{};
  bool served_ = false;  // a request head came: later waits between requests are idle ones
  bool receiving_ = false;
  bool sending_ = false;
  bool close_after_ = false;  // close once pending_ and the send in flight are out
  // We close before the client knows it must stop sending (a refused request, a keep-alive one
  // answered with a close): the close lingers even with no input waiting yet, for what is on
  // its way (net::linger_when::always), so that no reset cuts the last response.
  bool peer_may_send_ = false;
  bool tls_input_ended_ = false;  // a TLS read ended (close_notify, FIN or error): no more input
  bool closing_idle_ = false;     // a stop closes the connection between requests
  bool closing_ = false;
  bool closed_ = false;       // async_close completed
  bool compressing_ = false;  // a compress_job is being read and encoded
  compress_job job_;          // the response waiting for its compressed body
  std::string leftover_;      // pipelined bytes received behind a compressed request
  // The write and the read handed to tls_, one of each reused for every response and every
  // receive (its Asio adapters allocate an operation per call). A read that tls_ answers
  // inside start_read is run from the loop's task queue (tls_read_task_), as a handler would
  // be: the session never re-enters itself. Declared before tls_, which they outlive.
  struct tls_reader final : filters::read_waiter {
    session* self = nullptr;
  };
  struct tls_read_task final : runtime::task_node {
    session* self = nullptr;
  };
  static void on_tls_written(void* self, std::error_code ec, std::uint64_t bytes);
  static void on_tls_read(filters::read_waiter* w, std::error_code ec, fs::chain&& plaintext);
  static void run_tls_read(runtime::task_node* t, bool invoke);
  filters::callback_write_request tls_write_{&session::on_tls_written, this};
  tls_reader tls_reader_;
  tls_read_task tls_read_task_;
  bool tls_read_inline_ = false;  // inside tls_->start_read()
  std::error_code tls_read_ec_;   // an inline answer, for tls_read_task_
  fs::chain tls_read_data_;
  /// HTTPS only (null for plain HTTP). Declared after conn_: destroyed before it.
  std::unique_ptr<filters::tls_layer> tls_;
  bool tls_counted_ = false;    // handshake outcome added to the worker's counters
  bool shutting_down_ = false;  // TLS close_notify in flight
};

}  // namespace pagewire::sendfile_server
