#pragma once

/// One server thread: its own context (ring), SO_REUSEPORT listening socket and acceptor, page
/// pool, page cache, open-file cache, head arena, pipes and receive buffers; nothing on the hot
/// path is shared with other workers. run() builds everything on the calling thread,
/// serves until request_stop() and a graceful drain, and tears down on that thread.
///
/// Connection limit: at options().max_connections sessions the acceptor pauses; connections it
/// had already taken (a multishot accept drains a backlog at once) wait, unserved, and become
/// sessions one per closed session.
///
/// Stop: request_stop() (any thread) posts to the loop: the acceptor stops and the listening
/// socket closes (new connections are refused), idle connections close, busy ones close after
/// their response; after shutdown_timeout the rest are aborted. run() returns when no
/// connection is left.
///
/// Ownership: the server owns workers; a worker owns its sessions. Threading: run()
/// on the worker's thread; request_stop() and counters() from any thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>

#include <pagewire/apps/sendfile_server/access_log_writer.h>
#include <pagewire/apps/sendfile_server/compressed_cache.h>
#include <pagewire/apps/sendfile_server/head_arena.h>
#include <pagewire/apps/sendfile_server/listener.h>
#include <pagewire/apps/sendfile_server/options.h>
#include <pagewire/apps/sendfile_server/responder.h>
#include <pagewire/apps/sendfile_server/server_stats.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/fs/open_file_cache.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/acceptor.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/recv_buffer_ring.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/timer.h>

namespace pagewire::sendfile_server {

class session;

/// What every worker reads and nothing writes after start-up.
struct shared_config {
  const server_options* options = nullptr;
  net::options net;
  access_log_writer* access_log = nullptr;  // null: no access log
  /// HTTPS: the server's TLS configuration at start-up (SSL_CTX is thread-safe once
  /// built; every worker's sessions share it read-only). A reload hands workers a new one
  /// through worker::replace_tls, never through here. Null: plain HTTP.
  std::shared_ptr<filters::tls_context> tls;
  /// Renders /-/stats (reads every worker's counters; thread-safe).
  std::function<void(std::string&)> stats_json;
};

class worker {
 public:
  /// Takes ownership of `listen_fd` (open_listen_socket).
  worker(std::size_t index, const shared_config& config, int listen_fd);
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;
  ~worker();

  /// Builds the worker, starts accepting and serves until stopped; `ec` set when the
  /// document root cannot be opened. Call once, on the worker's own thread.
  void run(std::error_code& ec);
  /// Begins the graceful stop; any thread, idempotent.
  void request_stop();
  /// Connections accepted from the loop's next turn on use `tls` (a reloaded certificate);
  /// open ones keep the configuration they started with, which their tls_layer holds.
  /// Any thread.
  void replace_tls(std::shared_ptr<filters::tls_context> tls);
  const worker_counters& counters() const { return counters_; }
  bool fallback_backend() const { return fallback_.load(std::memory_order_relaxed); }

  // ---- for sessions (loop thread) ----------------------------------------------
  runtime::context& ctx() { return *ctx_; }
  const net::options& net_options() const { return config_.net; }
  net::pipe_pool& pipes() { return *pipes_; }
  net::recv_buffer_ring* recv_ring() { return recv_ring_.get(); }
  responder& responses() { return *responder_; }
  fs::page_cache* page_cache() { return cache_.get(); }
  fs::page_pool& page_pool() { return *pool_; }
  compressed_cache& compressed() { return compressed_; }
  /// Admits an on-the-fly compression of a file of `bytes` (it holds the file's pages and
  /// then its compressed body in page_pool() until it ends): true while the compressions in
  /// flight, this one included, stay within kCompressingBytes of file bytes, or when none is
  /// in flight. Each admission is ended by end_compression(bytes). Loop thread.
  bool admit_compression(std::uint64_t bytes);
  void end_compression(std::uint64_t bytes);
  worker_counters& counters() { return counters_; }
  access_log_writer::buffer* access_log() { return log_; }
  const server_options& options() const { return *config_.options; }
  const std::shared_ptr<filters::tls_context>& tls() const { return tls_; }
  bool stopping() const { return stopping_; }
  void on_session_closed(session* s);
  /// Counts one response, and copies this loop's busy-poll counters into counters()
  /// (read by /-/stats on any worker's thread; the context itself is this thread's).
  void count_request();
  /// Copies this loop's pipe_pool counters into counters() (for /-/stats, as count_request
  /// does the busy-poll ones). Called after each send when --stats is on.
  void mirror_pipe_stats();
  /// Logs "file truncated while served" once per worker.
  void note_truncated();

 private:
  void build();
  void on_accept(int fd);
  void open_session(int fd);
  void close_waiting();
  void close_listen_socket();
  void begin_stop();
  void maybe_finish();
  void teardown();

  std::size_t index_;
  int listen_fd_;
  const shared_config& config_;
  std::shared_ptr<filters::tls_context> tls_;  // loop thread (set under post_mu_ before it)
  std::unique_ptr<runtime::context> ctx_;
  std::unique_ptr<fs::page_pool> pool_;
  std::unique_ptr<fs::page_cache> cache_;
  std::unique_ptr<fs::open_file_cache> files_;
  std::unique_ptr<head_arena> heads_;
  std::unique_ptr<responder> responder_;
  std::unique_ptr<net::pipe_pool> pipes_;
  std::unique_ptr<net::recv_buffer_ring> recv_ring_;
  std::unique_ptr<net::acceptor> acceptor_;  // on listen_fd_, which the worker owns
  std::unique_ptr<runtime::timer> stop_timer_;
  access_log_writer::buffer* log_ = nullptr;
  worker_counters counters_;
  /// On-the-fly compressed bodies (their pages come from pool_, sized for them).
  static constexpr std::size_t kCompressedCacheBytes = std::size_t{4} << 20;
  compressed_cache compressed_{kCompressedCacheBytes};
  /// File bytes that compressions in flight may hold at once (one larger file is let
  /// through alone): compressions beyond it are answered uncompressed rather than taking
  /// the pool's pages from heads, TLS records and the page cache.
  static constexpr std::uint64_t kCompressingBytes = std::uint64_t{4} << 20;
  std::uint64_t compressing_bytes_ = 0;
  session* sessions_ = nullptr;
  std::size_t session_count_ = 0;  // at most options().max_connections
  // Accepted while session_count_ was at the limit; each becomes a session as one closes.
  std::deque<int> waiting_;
  bool stopping_ = false;
  bool truncation_logged_ = false;
  std::atomic<bool> fallback_{false};
  std::atomic<bool> stop_requested_{false};
  std::mutex post_mu_;  // guards posting to ctx_ from other threads
  bool accepting_posts_ = false;
};

}  // namespace pagewire::sendfile_server
