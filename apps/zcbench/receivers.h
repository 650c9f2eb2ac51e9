#pragma once

/// The receiving end of a trial: reads a socket to EOF and counts the bytes.
/// `copy` recv()s into a buffer; `splice` moves socket -> pipe -> /dev/null so the
/// receiver copies nothing. Called on the receiving thread; blocking.

#include <atomic>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>

namespace zcbench {

enum class recv_mode { copy, splice };

std::string_view to_string(recv_mode mode);
std::optional<recv_mode> parse_recv_mode(std::string_view text);

struct recv_counts {
  std::uint64_t bytes = 0;       ///< application bytes: read before EOF, or decoded
  std::uint64_t wire_bytes = 0;  ///< bytes read from the socket (== bytes when not decoding)
  std::uint64_t syscalls = 0;    ///< system calls made
};

/// Reads `socket` until EOF. `progress`, when not null, is set to the bytes
/// received so far (relaxed stores) for a progress line on another thread.
/// Returns the first error; `counts` covers what was received before it.
std::error_code receive_all(int socket, recv_mode mode, recv_counts& counts,
                            std::atomic<std::uint64_t>* progress);

}  // namespace zcbench
