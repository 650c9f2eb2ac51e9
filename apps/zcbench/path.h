// zcbench's path interface: one named strategy for putting N bytes on a socket.
//
// A path is a row in the path table (path_table.cc). The harness hands it a
// connected TCP socket and a source, and times `sender::send`, which must put
// exactly `source::total` bytes on the socket as a loop of messages of
// `message_size` bytes (the last one may be shorter). The path counts its own
// system calls (io_uring_enter calls for ring paths) and the bytes it copied
// through user-space buffers; the harness measures time and CPU around it.
//
// Adding a path (a pagewire one, say splice_pipe):
//   1. path_splice_pipe.h/.cc: a `sender` subclass, a `make` function, and
//      `extern const path splice_pipe_path` naming its raw counterpart ("splice").
//   2. path_table.cc: one line `&splice_pipe_path,` in the table (plus its include),
//      and the cc_library in BUILD as a dep of :path_table.

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

namespace zcbench {

/// The bytes to send. Owned by the harness and valid for the whole trial; a path
/// only reads from it. Pseudo-random bytes, or text-like ones for compressing paths
/// (--source). The stream is the same whichever member a path uses:
/// byte i of the file == memory[i % memory.size()].
struct source {
  /// O_RDONLY descriptor of a file of at least `total` bytes, page cache warm.
  /// Shared by all paths: use explicit 64-bit offsets (pread, sendfile's offset,
  /// splice's off_in), never the file position.
  int file_fd = -1;
  /// A window of the stream (min(total, 64 MiB) bytes); empty unless the path's
  /// `reads` is source_kind::memory.
  std::span<const std::byte> memory;
  /// Bytes to send.
  std::uint64_t total = 0;
};

/// What a path says about the bytes it moved; filled by `sender::send`.
struct send_counts {
  std::uint64_t bytes = 0;         ///< application bytes sent (== wire bytes unless transformed)
  std::uint64_t syscalls = 0;      ///< system calls made (io_uring_enter calls for ring paths)
  std::uint64_t bytes_copied = 0;  ///< bytes copied through user-space buffers
  /// Empty: the trial made the calls of path::raw. Otherwise the raw loop of the calls it
  /// made instead, which the trial is then compared with: pw_send_zc sends by sendmsg once
  /// the kernel reports that it copied SEND_ZC's pages (loopback, veth) and for runs shorter
  /// than send_zc_min_bytes, so "sendmsg". A string literal (lives for the program).
  std::string_view raw_used;
};

/// One trial's inputs for a path. The socket is connected and blocking, without a send
/// timeout: past the trial's deadline the harness shuts it down (shutdown(SHUT_RDWR)), so
/// pending calls and operations on it fail. The harness closes it after `send` returns.
struct transfer {
  int socket = -1;
  source src;
  std::size_t message_size = 0;  ///< > 0
};

/// A sender prepared for one trial. Built on the sending thread before the clock
/// starts; `send` is called once, timed, on the same thread; destroyed after.
class sender {
 public:
  virtual ~sender() = default;
  /// Puts exactly t.src.total bytes on t.socket as a loop of messages of
  /// t.message_size bytes, continuing after short transfers. Returns the first
  /// error (errno as std::system_category); `counts` covers what was done up to it.
  virtual std::error_code send(send_counts& counts) = 0;
};

enum class source_kind { file, memory };

/// How a path transforms the stream on the wire, which is also the decoder the
/// receiver runs: `none` (wire bytes == application bytes), `tls` (TLS 1.3 records; the
/// receiver is an OpenSSL client), `gzip` (gzip members), `zstd` (zstd frames). For a
/// transformed path `send_counts::bytes` counts application bytes the path accepted, and
/// the receiver counts the application bytes it decoded plus the wire bytes it read.
enum class stream_coding { none, tls, gzip, zstd };

/// A row of the path table. Constant data; lives for the program.
struct path {
  std::string_view name;     ///< --paths name and table row
  std::string_view raw;      ///< raw syscall loop it is compared with; == name for a raw loop
  std::string_view summary;  ///< one line for --list-paths
  source_kind reads = source_kind::file;
  /// What the receiver must decode (stream_coding::none: it counts wire bytes).
  stream_coding decode = stream_coding::none;
  /// Compresses its input: fed text-like bytes unless --source says otherwise.
  bool compresses = false;
  /// Builds the sender for one trial (pipes, rings, registered buffers): not timed.
  /// Returns null and sets `ec` when the path cannot run here (e.g. ENOSYS, EPERM);
  /// the harness reports it as skipped, not failed.
  std::unique_ptr<sender> (*make)(const transfer& t, std::error_code& ec) = nullptr;
};

/// Largest count one read/write/sendfile/splice call moves on Linux (MAX_RW_COUNT).
inline constexpr std::size_t kMaxIoChunk = 0x7ffff000;

}  // namespace zcbench
