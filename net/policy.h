#pragma once

/// net::options: every threshold and timeout of the net layer in one struct, validated once
/// (validate()) by whoever builds connections, transmits and pipe pools. A value type; read-only
/// after validation, so one instance may be shared by every connection of a thread (or of all
/// threads). net/README.md says how the defaults were measured (zcbench on loopback) and which
/// are conventions (timeouts).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <system_error>

namespace pagewire::net {

/// Largest count one read/write/splice/sendfile moves on Linux (MAX_RW_COUNT); one submission
/// never asks for more and the loop continues.
inline constexpr std::size_t kMaxIoChunk = 0x7ffff000;

struct options {
  // ---- transmit ---------------------------------------------------------------------------
  /// A run of registered memory slices goes by SEND_ZC only when it holds at least this many
  /// bytes; smaller runs (and unregistered memory) are gathered into one sendmsg. 16 KiB: on
  /// loopback a raw SEND_ZC loop lost 3x to sendmsg at 4 KiB, broke even at 16 KiB and won
  /// from 64 KiB (zcbench send_zc vs sendmsg; net/README.md). A NIC gains more than loopback.
  std::size_t send_zc_min_bytes = 16 * 1024;
  /// At most this many iovecs per gather sendmsg (<= IOV_MAX = 1024). 256: one call carries a
  /// 1 MiB run of 4 KiB pages; 64 needed 4x the calls at 1 MiB, 16 lost 24% at 16 MiB; 1024
  /// showed no gain over 256 within the noise and costs 16 KiB of iovecs per transmit_op.
  std::size_t max_iovecs = 256;
  /// Pipe capacity requested with F_SETPIPE_SZ (rounded up to pages by the kernel; capped by
  /// /proc/sys/fs/pipe-max-size for unprivileged users, then the kernel default stays).
  std::size_t pipe_size = std::size_t{1} << 20;
  /// Bytes per pull_fd/commit_write pair (<= pipe_size; <= kMaxIoChunk).
  std::size_t splice_chunk = std::size_t{1} << 20;
  /// Let splice_pipe run a pull (file -> pipe) and its commit (pipe -> socket) as splice(2) on
  /// the loop thread when they cannot sleep: the file's pages for the range are all in the page
  /// cache (cachestat(2)) and the socket is O_NONBLOCK. io_uring always punts IORING_OP_SPLICE
  /// to an io-wq worker, which costs two wake-ups per pair (splice_pipe.h). false: always
  /// linked SQEs (tests that inject faults into SPLICE SQEs; servers that would rather never
  /// risk a page evicted between the check and the pull).
  bool splice_inline = true;
  /// How far ahead of a pull one cachestat(2) call checks page-cache residency before
  /// splice_pipe decides to pull inline (a range found resident is remembered while the source
  /// fd stays the same, so a large range costs one check per window). 4 MiB: one check per four
  /// 1 MiB chunks; net/README.md.
  std::size_t residency_window = std::size_t{4} << 20;
  /// Bytes one transmit (or splice_pipe transfer) may move in steps that complete inline
  /// before it yields to other work on its context (a task-queue hop, no system call), so one
  /// large response cannot starve the loop's other connections. 4 MiB: measured against 1 MiB
  /// (one yield per chunk) with zcbench; net/README.md. Waiting for the socket (EAGAIN) also
  /// yields and restarts the count.
  std::size_t transfer_quantum = std::size_t{4} << 20;
  /// Memory runs that go by gather are first tried with sendmsg(MSG_DONTWAIT) on the loop
  /// thread; only what the socket refuses (EAGAIN) goes through IORING_OP_SENDMSG, which
  /// waits for room. false: every gather is an SQE.
  bool gather_inline = true;
  /// How a file range reaches a socket when splice is allowed (transfer_path::splice for its
  /// file kind): `splice` always through the pipe; `sendfile` by sendfile(2) on the loop when
  /// the range is resident in the page cache and the socket is O_NONBLOCK (else the pipe);
  /// `automatic`: sendfile for resident ranges shorter than sendfile_below_bytes, the pipe from
  /// there up. zcbench pw_sendfile vs pw_splice_pipe, sender CPU s/GB pinned to one core
  /// (net/README.md): sendfile 11-12% cheaper at 4 KiB and 64 KiB (one call instead of a pull
  /// and a commit), the 1 MiB pipe 7-21% cheaper from 128 KiB up (sendfile's internal pipe
  /// moves 16 pages per round).
  enum class file_path : std::uint8_t { automatic, splice, sendfile };
  file_path file_range_path = file_path::automatic;
  /// Threshold of file_path::automatic: ranges shorter than this go by sendfile. 128 KiB: the
  /// crossover measured between 64 KiB (sendfile cheaper) and 128 KiB (pipe cheaper).
  std::size_t sendfile_below_bytes = 128 * 1024;
  /// Idle pipes a pipe_pool keeps; more are closed when returned.
  std::size_t pipe_pool_max = 64;
  /// connection sets TCP_NODELAY on a TCP socket it takes. transmit already holds back every
  /// segment of a message but the last (MSG_MORE / SPLICE_F_MORE), so Nagle's algorithm only
  /// delays each message's tail until the peer ACKs what came before. sendfile_server, 1 MiB
  /// responses under wrk on loopback: 2,100 -> 3,000-5,000 requests/s and 410 -> 150-290 µs
  /// of server CPU per request (net/README.md). false: the socket keeps the kernel default.
  bool tcp_nodelay = true;
  /// Nonzero: connection sets TCP_NOTSENT_LOWAT to this many bytes on a TCP socket it takes.
  /// The socket then holds at most about this much data that TCP has not sent yet: a send
  /// takes what fits and returns short, and the socket turns writable again once its unsent
  /// bytes fall below the mark. transmit's wait for room then sends the rest from the
  /// application's thread, where without a mark the kernel sends queued bytes from the
  /// thread that receives the peer's ACKs. It also bounds the kernel memory (or the file
  /// pages) a slow client pins. 0: the kernel's default (net.ipv4.tcp_notsent_lowat,
  /// unlimited unless set). At most INT_MAX.
  std::size_t notsent_lowat = 0;

  // ---- receive ----------------------------------------------------------------------------
  /// Buffers in a provided-buffer ring (a power of two, <= 32768).
  unsigned recv_buffers = 64;
  /// Bytes per receive buffer (and the plain-recv buffer on the fallback).
  std::size_t recv_buffer_size = 16 * 1024;

  // ---- acceptor ---------------------------------------------------------------------------
  /// Pause before accepting again after EMFILE/ENFILE/ENOMEM/ENOBUFS.
  std::chrono::milliseconds accept_backoff{50};

  // ---- timeouts (zero: none) --------------------------------------------------------------
  /// From the start of a receive in the header phase to its first byte.
  std::chrono::milliseconds header_timeout{10'000};
  /// Keep-alive: a receive in the idle phase with no byte for this long fails.
  std::chrono::milliseconds idle_timeout{60'000};
  /// A send during which the socket accepts no byte for this long fails (ETIMEDOUT).
  std::chrono::milliseconds send_timeout{30'000};
  /// Lingering close (connection::async_lingering_close): after our FIN, the peer's input is
  /// read and dropped until it ends, until it sends nothing for linger_timeout, or for at most
  /// linger_time in all (nginx's lingering_timeout and lingering_time).
  std::chrono::milliseconds linger_timeout{5'000};
  std::chrono::milliseconds linger_time{30'000};

  /// Empty when every field is in range, else EINVAL. Call once, before use.
  std::error_code validate() const noexcept;
};

}  // namespace pagewire::net
