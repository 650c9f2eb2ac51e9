#pragma once

/// Access-log lines in the combined log format (Apache/nginx "combined"):
///   HOST - USER [10/Oct/2000:13:55:36 +0000] "REQUEST" STATUS BYTES "REFERER" "UA"
/// Formatting only: the server buffers lines and writes them off the hot path.
/// Pure; any thread.

#include <cstdint>
#include <string>
#include <string_view>

#include <pagewire/apps/http/status.h>

namespace pagewire::http {

struct access_log_entry {
  std::string_view remote_addr;   // "127.0.0.1" or "::1"
  std::string_view remote_user;   // "" -> "-"
  std::int64_t time = 0;          // seconds since the epoch, logged in UTC
  std::string_view request_line;  // "" (request never parsed) -> "-"
  unsigned status = 0;
  std::uint64_t bytes_sent = 0;  // body bytes
  std::string_view referer;      // "" -> "-"
  std::string_view user_agent;   // "" -> "-"
};

/// Appends one line, '\n'-terminated. Quoted fields escape '"', '\\' and bytes outside
/// 0x20..0x7e as \xHH (as nginx does), so a request cannot forge log lines.
void append_combined_log(std::string& out, const access_log_entry& e);

}  // namespace pagewire::http
