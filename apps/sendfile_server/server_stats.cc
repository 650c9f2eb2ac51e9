#include <charconv>

#include <pagewire/apps/sendfile_server/server_stats.h>

namespace pagewire::sendfile_server {
namespace {

using counter = std::atomic<std::uint64_t> worker_counters::*;

std::uint64_t sum(std::span<const worker_counters* const> ws, counter c) {
  std::uint64_t total = 0;
  for (const auto* w : ws)
    total += (w->*c).load(std::memory_order_relaxed);
  return total;
}

// Appends with explicit lengths only: GCC 12's -Wrestrict misfires (PR105329) on
// operator+= / assign of short literals at -O2.
void put(std::string& out, std::string_view s) {
  out.append(s.data(), s.size());
}

void field(std::string& out, std::string_view name, std::uint64_t v, bool last = false) {
  char num[24];
  const auto [end, ec] = std::to_chars(num, num + sizeof num, v);
  (void)ec;
  out.push_back('"');
  put(out, name);
  put(out, "\":");
  out.append(num, static_cast<std::size_t>(end - num));
  if (!last) out.push_back(',');
}

}  // namespace

void render_stats_json(const stats_context& c, std::string& out) {
  const auto& ws = c.workers;
  out.clear();
  out.push_back('{');
  field(out, "requests", sum(ws, &worker_counters::requests));
  field(out, "bytes_sent", sum(ws, &worker_counters::bytes_sent));
  field(out, "body_bytes", sum(ws, &worker_counters::body_bytes));
  field(out, "bytes_copied_user_space", c.copied_bytes);
  field(out, "connections_accepted", sum(ws, &worker_counters::accepted));
  field(out, "open_connections", sum(ws, &worker_counters::open_connections));
  field(out, "timeouts", sum(ws, &worker_counters::timeouts));
  field(out, "send_errors", sum(ws, &worker_counters::send_errors));
  field(out, "truncated_files", sum(ws, &worker_counters::truncated));
  field(out, "lingering_closes", sum(ws, &worker_counters::lingering_closes));
  put(out, "\"page_cache\":{");
  field(out, "hits", sum(ws, &worker_counters::page_cache_hits));
  field(out, "misses", sum(ws, &worker_counters::page_cache_misses), true);
  put(out, "},\"compressed_cache\":{");
  field(out, "hits", sum(ws, &worker_counters::compressed_cache_hits));
  field(out, "misses", sum(ws, &worker_counters::compressed_cache_misses));
  field(out, "failed", sum(ws, &worker_counters::compress_failures));
  field(out, "refused", sum(ws, &worker_counters::compress_refused), true);
  put(out, "},\"absent_siblings\":{");
  field(out, "checked", sum(ws, &worker_counters::siblings_absent_checked));
  field(out, "cached", sum(ws, &worker_counters::siblings_absent_cached), true);
  put(out, "},\"paths\":{");
  field(out, "splice", sum(ws, &worker_counters::path_splice));
  field(out, "sendfile", sum(ws, &worker_counters::path_sendfile));
  field(out, "send_zc", sum(ws, &worker_counters::path_send_zc));
  field(out, "gather", sum(ws, &worker_counters::path_gather));
  field(out, "tls", sum(ws, &worker_counters::path_tls));
  field(out, "fallback_copy", sum(ws, &worker_counters::path_fallback_copy), true);
  put(out, "},\"transmit\":{");
  field(out, "inline_sends", sum(ws, &worker_counters::tx_inline_sends));
  field(out, "yields", sum(ws, &worker_counters::tx_yields));
  field(out, "top_ups", sum(ws, &worker_counters::tx_top_ups));
  field(out, "short_sends", sum(ws, &worker_counters::tx_short_sends), true);
  put(out, "},\"pipes\":{");
  field(out, "created", sum(ws, &worker_counters::pipes_created));
  field(out, "reused", sum(ws, &worker_counters::pipes_reused));
  field(out, "discarded", sum(ws, &worker_counters::pipes_discarded));
  field(out, "undersized", sum(ws, &worker_counters::pipes_undersized));
  field(out, "idle", sum(ws, &worker_counters::pipes_idle), true);
  put(out, "},\"backend\":\"");
  put(out, c.fallback_backend ? "fallback" : "io_uring");
  put(out, "\",\"tls\":");
  put(out, c.tls ? "true" : "false");
  // The TLS record path in use (tls_layer stats): kTLS once any handshake got it.
  const std::uint64_t ktls = sum(ws, &worker_counters::tls_handshakes_ktls);
  put(out, ",\"tls_path\":\"");
  put(out, !c.tls ? "none" : ktls > 0 ? "ktls" : "userspace");
  put(out, "\",\"ktls_reason\":\"");
  for (char ch : c.ktls_reason) {
    if (ch == '"' || ch == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(ch) >= 0x20) out.push_back(ch);
  }
  put(out, "\",\"tls_handshakes\":{");
  field(out, "userspace", sum(ws, &worker_counters::tls_handshakes_userspace));
  field(out, "ktls", ktls);
  field(out, "resumed", sum(ws, &worker_counters::tls_handshakes_resumed));
  field(out, "failed", sum(ws, &worker_counters::tls_handshake_failures), true);
  put(out, "},\"tls_reloads\":{");
  field(out, "done", c.tls_reloads);
  field(out, "failed", c.tls_reload_errors, true);
  put(out, "},\"busy_poll\":{");
  field(out, "us", c.busy_poll_us);
  field(out, "wakeups", sum(ws, &worker_counters::polled_wakeups));
  field(out, "idle", sum(ws, &worker_counters::polled_idle), true);
  put(out, "},\"access_log\":{");
  field(out, "write_errors", c.log_write_errors);
  field(out, "reopens", c.log_reopens);
  field(out, "reopen_errors", c.log_reopen_errors, true);
  put(out, "},");
  field(out, "threads", c.threads, true);
  put(out, "}\n");
}

}  // namespace pagewire::sendfile_server
