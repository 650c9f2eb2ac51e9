#pragma once

/// Receivers that decode what a transforming path sends (path::decode): a TLS client
/// (OpenSSL over the blocking socket; any TLS 1.2/1.3 suite, no certificate check), a
/// gzip decoder (zlib, concatenated members allowed) and a zstd decoder (concatenated
/// frames allowed). Each recv()s into a buffer (so --recv does not apply), counts the wire
/// bytes it read and the application bytes it decoded, and requires a clean end: TLS
/// close_notify, or EOF on a gzip member / zstd frame boundary (else errc::protocol_error).
/// Called on the receiving thread; blocking.

#include <atomic>
#include <cstdint>
#include <system_error>

#include "apps/zcbench/path.h"
#include "apps/zcbench/receivers.h"

namespace zcbench {

/// Reads `socket` to the stream's end and decodes it as `coding` (not stream_coding::none).
/// `progress`, when not null, gets the application bytes decoded so far (relaxed stores).
/// Returns the first error; `counts` covers what was done before it.
std::error_code receive_decoded(int socket, stream_coding coding, recv_counts& counts,
                                std::atomic<std::uint64_t>* progress);

}  // namespace zcbench
