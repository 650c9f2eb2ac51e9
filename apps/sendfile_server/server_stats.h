#pragma once

/// Counters of the server, per worker thread, and the /-/stats JSON built from them.
/// Each worker writes only its own `worker_counters` (relaxed, single-writer bumps);
/// any thread may read them. The JSON sums every worker and adds the process-wide
/// user-space copy count (fs::stats), the transmit paths in use and the runtime backend.

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pagewire::sendfile_server {

struct worker_counters {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> bytes_sent{0};  // every byte written to sockets
  std::atomic<std::uint64_t> body_bytes{0};  // body bytes of responses sent
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> open_connections{0};
  std::atomic<std::uint64_t> timeouts{0};           // connections closed by a timeout
  std::atomic<std::uint64_t> send_errors{0};        // connections ended by a failed send
  std::atomic<std::uint64_t> lingering_closes{0};   // closes that dropped a client's input first
  std::atomic<std::uint64_t> truncated{0};          // files that shrank while being served
  std::atomic<std::uint64_t> page_cache_hits{0};    // responses whose body came from it
  std::atomic<std::uint64_t> page_cache_misses{0};  // small bodies sent as file ranges
  std::atomic<std::uint64_t> compressed_cache_hits{0};    // on-the-fly bodies reused
  std::atomic<std::uint64_t> compressed_cache_misses{0};  // on-the-fly bodies encoded
  std::atomic<std::uint64_t> compress_failures{0};  // of those, failed: sent without compressing
  std::atomic<std::uint64_t> compress_refused{0};   // of those, not started: over the budget
  std::atomic<std::uint64_t> siblings_absent_checked{0};  // sibling opens that failed
  std::atomic<std::uint64_t> siblings_absent_cached{0};   // sibling opens spared (known absent)
  // Transmit paths (segments or operations sent by each path; mirrored from net).
  std::atomic<std::uint64_t> path_splice{0};
  std::atomic<std::uint64_t> path_sendfile{0};
  std::atomic<std::uint64_t> path_send_zc{0};
  std::atomic<std::uint64_t> path_gather{0};
  std::atomic<std::uint64_t> path_tls{0};  // responses written through tls_layer
  // TLS handshakes, counted when the connection's first read ends (its first request bytes,
  // EOF or an error): a client that shook hands and sent nothing yet is not counted yet.
  std::atomic<std::uint64_t> tls_handshakes_userspace{0};
  std::atomic<std::uint64_t> tls_handshakes_ktls{0};
  std::atomic<std::uint64_t> tls_handshakes_resumed{0};  // of the two above
  std::atomic<std::uint64_t> tls_handshake_failures{0};  // not TLS, timed out, refused
  std::atomic<std::uint64_t> path_fallback_copy{0};
  // How transmits moved (mirrored from net::transmit_stats).
  std::atomic<std::uint64_t> tx_inline_sends{0};  // gather sendmsg calls made on the loop
  std::atomic<std::uint64_t> tx_yields{0};        // transfer_quantum reached: one task hop
  std::atomic<std::uint64_t> tx_top_ups{0};       // splice pipe refilled after a short commit
  std::atomic<std::uint64_t> tx_short_sends{0};   // results below what was asked, continued
  // The loop's pipe_pool (net::pipe_pool_stats), as of the worker's last send.
  std::atomic<std::uint64_t> pipes_created{0};
  std::atomic<std::uint64_t> pipes_reused{0};
  std::atomic<std::uint64_t> pipes_discarded{0};   // closed because they may hold bytes
  std::atomic<std::uint64_t> pipes_undersized{0};  // F_SETPIPE_SZ refused: smaller pipes
  std::atomic<std::uint64_t> pipes_idle{0};
  // The loop's busy polls (runtime::stats_snapshot), as of the worker's last response.
  std::atomic<std::uint64_t> polled_wakeups{0};
  std::atomic<std::uint64_t> polled_idle{0};

  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  static void drop(std::atomic<std::uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
};

struct stats_context {
  std::span<const worker_counters* const> workers;
  std::uint64_t copied_bytes = 0;  // fs::stats::copied_bytes()
  bool fallback_backend = false;   // a worker runs on the epoll fallback
  std::size_t threads = 0;
  bool tls = false;
  std::string ktls_reason;                               // filters::probe_ktls().reason() when tls
  std::uint64_t tls_reloads = 0, tls_reload_errors = 0;  // server::reload_tls
  std::uint64_t busy_poll_us = 0;                        // --busy-poll-us
  // access_log_writer's counters (0 without --access-log).
  std::uint64_t log_write_errors = 0, log_reopens = 0, log_reopen_errors = 0;
};

/// Renders the JSON object served at /-/stats into `out` (replacing its contents).
void render_stats_json(const stats_context& c, std::string& out);

}  // namespace pagewire::sendfile_server
