#pragma once

/// transmit: puts a whole fs::chain (one logical message: header slice, file range, trailer...)
/// on a socket and completes once, when every byte was accepted or at the first error: the
/// seeds' compound operation (one parent; children issued in order, each advancing the chain;
/// summed bytes; first error; cancel cascades to the child in flight).
///
/// Per segment run it picks a path:
///  - gather: consecutive memory slices (up to options::max_iovecs) in one sendmsg: first as
///    sendmsg(MSG_DONTWAIT) on the loop (options::gather_inline), and through
///    IORING_OP_SENDMSG (which waits for room) only for what the socket refused;
///  - send_zc: a run of registered slices of at least options::send_zc_min_bytes, contiguous
///    in one arena, by IORING_OP_SEND_ZC with IORING_RECVSEND_FIXED_BUF and the arena's
///    buffer index (IORING_OP_SENDMSG_ZC when not contiguous). The slices are released only at
///    the NOTIF CQE: the transmit goes on at the run's first CQE (the bytes the socket took),
///    and the run keeps what it sent until its notification; several runs can wait for theirs
///    at once, and the transmit completes only after the last. (Waiting for each notification
///    before the next run would hold a run sent with MSG_MORE until the peer's delayed ACK or
///    the kernel's cork timer let it go.) Usage reports are requested
///    (IORING_SEND_ZC_REPORT_USAGE); when the kernel says it copied (IORING_NOTIF_USAGE_ZC_COPIED,
///    as on loopback), this transmit_op uses plain gather sends for the rest of its life (one per
///    connection);
///  - file ranges: splice_pipe (file -> pipe -> socket), which falls back to sendfile and then
///    read + send by itself; options::file_range_path lets ranges resident in the page cache go
///    by sendfile(2) on the loop instead of the pipe. A resident range that the socket takes
///    whole (within the quantum; for the pipe, within a chunk) goes by its one sendfile or two
///    splices without a splice_pipe transfer around them (splice_pipe::sendfile_now,
///    splice_now).
/// Steps that complete inline run as a loop; after options::transfer_quantum bytes the
/// transmit yields once to the loop's task queue (stats: yields), so transmits on one context
/// interleave. The send-progress clock is read once per run of inline steps that ends in a
/// wait, not per segment; a transmit that never waits never reads it.
/// Every submission but the one that ends the chain carries MSG_MORE / SPLICE_F_MORE; the last
/// does only when the caller says the message goes on in its next chain (send_flags::more), so
/// a message's tail never waits for the kernel's cork timer (~200 ms) unless its sender asked.
/// MSG_NOSIGNAL always. Short sends continue where they stopped; at most kMaxIoChunk bytes per
/// submission; 64-bit offsets. A file that shrinks under a range ends the transmit with ENODATA
/// after the bytes that exist (the caller closes the connection: the peer was promised more).
///
/// Two forms: transmit_op, a reusable, non-allocating object for the server's hot path
/// (override on_complete), and async_transmit(), an Asio initiating function
/// (CompletionToken; signature void(std::error_code, std::uint64_t bytes)).
///
/// Ownership: a transmit_op owns the chain it sends (segments are dropped as they complete,
/// after the NOTIF for SEND_ZC). The socket, context, pipe_pool and options outlive it.
/// Threading: the loop thread of its context. Errors: std::error_code, system_category; a
/// cancelled transmit completes with ECANCELED.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sys/socket.h>
#include <sys/uio.h>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/prefer.hpp>

#include <pagewire/fs/chain.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/splice_pipe.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/operation.h>

// liburing 2.3's io_uring.h predates usage reports (kernel 6.2).
#ifndef IORING_SEND_ZC_REPORT_USAGE
#define IORING_SEND_ZC_REPORT_USAGE (1U << 3)
#endif
#ifndef IORING_NOTIF_USAGE_ZC_COPIED
#define IORING_NOTIF_USAGE_ZC_COPIED (1U << 31)
#endif

namespace pagewire::net {

namespace asio = boost::asio;

/// Whether a chain ends its message. `more`: the caller sends the rest of the same message in
/// its next chain, soon; the chain's last submission carries MSG_MORE / SPLICE_F_MORE too, so
/// its partial last segment waits to be filled by the next chain instead of going out alone.
/// The kernel holds such a tail until the next send without MSG_MORE, an ACK, or about 200 ms
/// (TCP's cork rule): a caller that says `more` and then waits pays that delay. A file range
/// that goes by sendfile(2) (options::file_range_path) cannot carry the flag: it pushes its
/// tail whatever follows.
enum class send_flags : std::uint8_t { none = 0, more = 1 };

/// The path a piece of a chain took.
enum class send_path : std::uint8_t { gather, send_zc, splice, sendfile, fallback, count_ };
inline constexpr std::size_t kSendPaths = static_cast<std::size_t>(send_path::count_);

/// Counters per path (submissions and bytes), for the server's stats. Plain values; add them up
/// across connections with +=.
struct transmit_stats {
  std::array<std::uint64_t, kSendPaths> submissions{};
  std::array<std::uint64_t, kSendPaths> bytes{};
  std::uint64_t transmits = 0;     ///< completed transmits
  std::uint64_t errors = 0;        ///< transmits that ended with an error
  std::uint64_t zc_notifs = 0;     ///< SEND_ZC notifications received
  std::uint64_t zc_copied = 0;     ///< notifications that reported a copy
  std::uint64_t zc_disabled = 0;   ///< 1 once this op switched SEND_ZC off
  std::uint64_t more_flagged = 0;  ///< submissions sent with MSG_MORE / SPLICE_F_MORE
  std::uint64_t short_sends = 0;   ///< results below what was asked, continued
  std::uint64_t yields = 0;        ///< transfer_quantum reached: one hop through the task queue
  std::uint64_t top_ups = 0;       ///< splice pipe pulls behind bytes a short commit left
  std::uint64_t inline_sends = 0;  ///< gather sendmsg calls made on the loop (MSG_DONTWAIT)
  /// System calls made outside the ring (inline sendmsg, inline splice, sendfile, fstat...);
  /// io_uring_enter calls are the context's (runtime::context_stats::enters).
  std::uint64_t syscalls = 0;

  std::uint64_t submissions_of(send_path p) const noexcept {
    return submissions[static_cast<std::size_t>(p)];
  }
  std::uint64_t bytes_of(send_path p) const noexcept { return bytes[static_cast<std::size_t>(p)]; }
  transmit_stats& operator+=(const transmit_stats& o) noexcept;
};

class transmit_op {
 public:
  using clock = std::chrono::steady_clock;

  /// `opts` validated; `pipes` serves file ranges. Both outlive the op.
  transmit_op(runtime::context& ctx, const options& opts, pipe_pool& pipes);
  transmit_op(const transmit_op&) = delete;
  transmit_op& operator=(const transmit_op&) = delete;
  virtual ~transmit_op();

  /// Sends all of `message` on socket `fd`. Precondition: !busy(). An empty chain completes
  /// (with 0 bytes) on the loop, never inline. On return `message` is empty and holds the
  /// segment storage of this op's previous message (capacity, no segments): a caller that
  /// builds each message in the same chain allocates nothing for it once that storage is big
  /// enough. What an earlier transmit left unsent (remaining() after an error) is dropped.
  /// `flags`: send_flags::more when the next transmit continues this message.
  void start(int fd, fs::chain&& message, send_flags flags = send_flags::none);
  /// Cancels the child in flight; on_complete follows with ECANCELED (bytes so far).
  void cancel();

  bool busy() const noexcept { return busy_; }
  /// Bytes accepted by the socket in the current (or last) transmit (a file range in flight
  /// counts what its splice_pipe moved so far).
  std::uint64_t sent() const noexcept;
  /// What is left of the current message (after an error: what was not sent).
  const fs::chain& remaining() const noexcept { return chain_; }
  /// When the socket last accepted a byte (or the transmit started), as of the last wait: for
  /// send timeouts (stamped before each wait, not per segment, from CLOCK_MONOTONIC_COARSE:
  /// steady_clock's epoch, up to one tick early). A transmit that has not waited yet is
  /// running on the loop now, and this reads the clock: one that completes without waiting
  /// (most small responses) reads it never.
  clock::time_point last_progress() const noexcept;
  /// Whether SEND_ZC may still be used (false after the kernel reported a copy, or on a
  /// context whose probe lacks it).
  bool send_zc_enabled() const noexcept { return zc_enabled_; }
  /// Counters over this op's life. Assembled on each call (file-range paths come from the
  /// splice_pipe's own counters, so a transmit does not copy them per range); bytes of a file
  /// range in flight are counted as they move.
  transmit_stats stats() const noexcept;

 protected:
  /// The transmit ended. `bytes` = sent(). Runs on the loop (never inside start()); may start
  /// the next transmit or destroy *this.
  virtual void on_complete(std::error_code ec, std::uint64_t bytes) = 0;
  /// A segment was fully sent and is about to be dropped (for SEND_ZC: at its run's NOTIF,
  /// possibly after later segments were released).
  /// Default: nothing. For tests and accounting.
  virtual void on_released(const fs::segment& s) { (void)s; }

 private:
  struct send_child;
  struct zc_child;
  struct file_child;
  struct kickoff;
  friend struct send_child;
  friend struct zc_child;
  friend struct file_child;
  friend struct kickoff;

  void next();
  bool send_memory(std::uint64_t& budget);
  bool send_inline(std::uint64_t bytes, std::uint64_t& budget);
  bool start_child(runtime::operation& child, bool more);
  void yield();
  void stamp_progress() noexcept;
  bool send_file(std::uint64_t& budget);
  void child_done(int result);
  zc_child& idle_zc_child();
  void zc_sent(zc_child& z, int result);
  void zc_done(zc_child& z, int result, unsigned flags);
  void send_failed(send_path path, int result);
  void file_done(std::error_code ec, std::uint64_t moved);
  // The socket took `sent` of the `asked` bytes of one submission on `path`: stats, then advance.
  void accepted(send_path path, std::uint64_t sent, std::uint64_t asked, zc_child* hold = nullptr);
  // Past `n` sent bytes: dropped (on_released), or moved to `hold`, the SEND_ZC run that sent them.
  void advance(std::uint64_t n, zc_child* hold = nullptr);
  void finish(std::error_code ec);
  bool zc_candidate(std::size_t segments, std::uint64_t bytes, bool& contiguous) const noexcept;

  runtime::context& ctx_;
  const options& opts_;
  std::unique_ptr<send_child> send_;
  std::vector<std::unique_ptr<zc_child>> zc_children_;  // every one made; the idle ones reused
  std::vector<zc_child*> zc_idle_;
  zc_child* zc_waiting_ = nullptr;  // the run whose send result the transmit waits for
  std::size_t zc_pending_ = 0;      // runs started whose last CQE has not come
  bool finish_deferred_ = false;    // the transmit ended: it completes at the last notification
  std::error_code finish_ec_;
  std::unique_ptr<file_child> file_;
  std::unique_ptr<kickoff> kickoff_;
  std::vector<iovec> iov_;
  msghdr msg_{};
  fs::chain chain_;
  int fd_ = -1;
  std::uint64_t sent_ = 0;
  std::uint64_t asked_ = 0;
  clock::time_point last_progress_{};  // time_point::min(): not stamped since the start
  bool progress_pending_ = false;      // started, or bytes accepted, since the last stamp
  bool gather_by_sqe_ = false;         // the socket was full: the next gather waits in the ring
  bool file_inline_ = false;           // inside file_->start_now(): file_done only records
  bool file_returned_ = false;         // file_done ran inside start_now()
  std::error_code file_ec_;            // its result
  std::uint64_t file_moved_ = 0;
  transmit_stats stats_;
  bool busy_ = false;
  bool cancelled_ = false;
  bool zc_enabled_ = false;
  bool more_after_ = false;  // send_flags::more: the last submission carries MSG_MORE too
};

namespace detail {

template <class Handler>
class async_transmit_op final : public transmit_op {
 public:
  async_transmit_op(runtime::context& ctx, const options& opts, pipe_pool& pipes,
                    transmit_stats* sink, Handler&& h)
      : transmit_op(ctx, opts, pipes),
        sink_(sink),
        handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)) {}

 protected:
  void on_complete(std::error_code ec, std::uint64_t bytes) override {
    if (sink_) *sink_ += stats();
    Handler h(std::move(handler_));
    auto work = std::move(work_);
    delete this;
    auto ex = asio::get_associated_executor(h, work);
    asio::dispatch(ex, [h = std::move(h), ec, bytes]() mutable { std::move(h)(ec, bytes); });
  }

 private:
  transmit_stats* sink_;
  Handler handler_;
  std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler, runtime::executor>>(),
      asio::execution::outstanding_work.tracked))>
      work_;
};

}  // namespace detail

/// Sends `message` on `fd` (one allocation per call). `sink`, when given, receives this
/// transmit's path counters before the handler runs. Note: SEND_ZC's copy detection cannot
/// stick across calls here; a connection keeps one transmit_op for that (connection.h).
/// Signature: void(std::error_code, std::uint64_t bytes_sent). Loop thread only.
template <class Token>
auto async_transmit(runtime::context& ctx, int fd, fs::chain message, const options& opts,
                    pipe_pool& pipes, Token&& token, transmit_stats* sink = nullptr) {
  return asio::async_initiate<Token, void(std::error_code, std::uint64_t)>(
      [](auto handler, runtime::context* c, int s, fs::chain m, const options* o, pipe_pool* p,
         transmit_stats* k) {
        using H = decltype(handler);
        auto* op = new detail::async_transmit_op<H>(*c, *o, *p, k, std::move(handler));
        op->start(s, std::move(m));
      },
      token, &ctx, fd, std::move(message), &opts, &pipes, sink);
}

}  // namespace pagewire::net
