#pragma once

/// splice_pipe: moves a byte count from one descriptor to another through a pipe, without the
/// bytes entering user space, in the four steps of the 2001 splice model (seeds/003):
///
///   n = prepare_read();   how much the source can give now (a file: never past its current
///                         size, fstat when the range reaches past what was last seen)
///   prepare_write(n);     reserve a pipe from the pool; SPLICE_F_MORE when more follows
///   pull_fd(n);           IORING_OP_SPLICE source -> pipe
///   commit_write(n);      IORING_OP_SPLICE pipe -> destination
///
/// pull_fd and commit_write go to the kernel as two linked SQEs (IOSQE_IO_LINK) in one enter.
/// A short pull breaks the link (the kernel cancels the commit); the bytes the pipe then holds
/// are committed alone.
///
/// Inline first, where that cannot block the loop. Kernel fact: io_uring never runs
/// IORING_OP_SPLICE inline; it always hands it to an io-wq worker (5.7+: io_splice() returns
/// -EAGAIN under IO_URING_F_NONBLOCK; newer kernels set REQ_F_FORCE_ASYNC in splice prep),
/// because splice(2) has no non-blocking mode for the file side: SPLICE_F_NONBLOCK only covers
/// the pipe, and a page-cache miss in filemap_splice_read() sleeps on the disk. So each linked
/// pair costs a worker wake-up plus a wake-up of the loop (about 10 us; more than moving 4 KiB).
/// A pull therefore runs as a plain splice(2) on the loop thread when it cannot sleep: the
/// source is a regular file whose pages for the range are all in the page cache (cachestat(2),
/// 6.5+, over a window of kResidencyWindow bytes, remembered while the source fd stays the
/// same), the pipe has room, and SPLICE_F_NONBLOCK; its commit runs inline too when the
/// destination is a stream (socket or pipe) opened O_NONBLOCK (checked with F_GETFL once per
/// destination fd), so a full socket answers EAGAIN (then POLL_ADD) instead of sleeping.
/// Inline steps run as a loop (pull, commit, pull...), not as recursion, until
/// options::transfer_quantum bytes moved (then one yield to the loop's task queue: no system
/// call), the socket is full or the range ends. A short commit (the socket took fewer bytes
/// than the pipe held) waits for POLLOUT and then tops the pipe up (pulls more behind the
/// bytes still in it) before the next commit, instead of committing the remainder alone.
/// With `sendfile_if_resident` (transmit's options::file_range_path), a resident range goes
/// by sendfile(2) on the loop instead of the pipe (same rules: O_NONBLOCK destination,
/// quantum, POLLOUT on a full socket). Everything else (a file not cached, no cachestat, a socket
/// source, a file destination whose writes may throttle) goes by the linked SQEs. A page evicted
/// between the cachestat and the pull makes that one pull wait for the disk on the loop; a page
/// still being read in is counted cached and may be waited for too (both rare: a page just found
/// cached). Directions: file -> socket (a response body), socket -> socket (a proxy), socket ->
/// file (an upload); any pair splice(2) accepts.
///
/// EAGAIN on either end (non-blocking sockets, the pool's non-blocking pipes) waits for
/// readiness with IORING_OP_POLL_ADD and reissues. EINVAL (a descriptor splice refuses) falls
/// back to sendfile (file source only), then to read + send/write through a user buffer (those
/// bytes are counted in fs::stats as copy_reason::fallback); the decision is remembered in the
/// pipe_pool per file kind and logged once. Bytes a pipe holds when the destination refuses are
/// drained through the same user buffer; a pipe that may hold bytes after an error or cancel is
/// discarded, never reused.
///
/// End of source: a socket source that reaches EOF completes with the bytes moved so far (no
/// error). A file source that ends before the range (the file shrank) completes with ENODATA
/// after moving every byte that exists: no hang, no padding.
///
/// Ownership: the caller owns the splice_pipe and both descriptors, which must stay open until
/// on_complete ran. One transfer at a time. Threading: the loop thread of `ctx`. The sendfile
/// fallback is a plain syscall on the loop thread: with a blocking destination it can block.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>

#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/operation.h>
#include <pagewire/runtime/task.h>

namespace pagewire::net {

/// One end of a transfer: a descriptor and, for a file, the 64-bit offset to start at
/// (-1: a stream such as a socket or a pipe; its position is not used).
struct endpoint {
  int fd = -1;
  std::int64_t offset = -1;
  bool is_file() const noexcept { return offset >= 0; }
};

/// Bytes moved by each path over a splice_pipe's life, and the transfers that used each path
/// (a transfer that fell back mid-way counts under both paths).
struct splice_counters {
  std::uint64_t splice_bytes = 0;
  std::uint64_t sendfile_bytes = 0;
  std::uint64_t read_send_bytes = 0;
  std::uint64_t splice_transfers = 0;
  std::uint64_t sendfile_transfers = 0;
  std::uint64_t read_send_transfers = 0;
  std::uint64_t polls = 0;         ///< EAGAIN waits (POLL_ADD)
  std::uint64_t inline_pulls = 0;  ///< pull_fd steps run as splice(2) on the loop thread
  std::uint64_t linked_pairs = 0;  ///< pull_fd + commit_write pairs submitted as linked SQEs
  std::uint64_t yields = 0;        ///< transfer_quantum reached: a hop through the task queue
  std::uint64_t top_ups = 0;       ///< inline pulls into a pipe that still held bytes
  std::uint64_t more_commits = 0;  ///< commits that moved bytes with SPLICE_F_MORE
  /// System calls made outside the ring (inline splice, sendfile, fstat, fstatfs, fcntl,
  /// cachestat, pipe reads); io_uring_enter calls are the context's (context_stats::enters).
  std::uint64_t syscalls = 0;
};

class splice_pipe {
 public:
  /// `opts` must be validated and outlive this; `pool` too.
  splice_pipe(runtime::context& ctx, pipe_pool& pool, const options& opts);
  splice_pipe(const splice_pipe&) = delete;
  splice_pipe& operator=(const splice_pipe&) = delete;
  virtual ~splice_pipe();

  /// Starts moving `length` bytes from `src` to `dst`. `more_after`: more bytes of the same
  /// message follow this transfer, so even the last commit carries SPLICE_F_MORE (MSG_MORE on
  /// the fallbacks). `sendfile_if_resident`: a file range whose pages are in the page cache goes
  /// by sendfile(2) on the loop (O_NONBLOCK stream destinations only; else the pipe).
  /// Precondition: !busy(). Completion: on_complete, on the loop.
  void start(endpoint src, endpoint dst, std::uint64_t length, bool more_after,
             bool sendfile_if_resident = false);
  /// As start(), but the first step runs now: on_complete may run before this returns. For
  /// callers already on the loop that are ready for that (transmit_op), saving a task hop.
  /// `writable_first`: the caller just found the destination full, so the transfer begins by
  /// waiting for room instead of with a call that would answer EAGAIN.
  void start_now(endpoint src, endpoint dst, std::uint64_t length, bool more_after,
                 bool sendfile_if_resident, bool writable_first = false);
  /// The common case of start_now(..., sendfile_if_resident = true) without a transfer: one
  /// sendfile(2) of a file range that is resident and within the file's known size, to an
  /// O_NONBLOCK destination (a socket), on the caller's thread. Returns the bytes the socket
  /// took (all `length` for most ranges: counted in counters() as one sendfile transfer; a
  /// short send's range is counted once, by the start_now() transfer of its rest). Returns 0
  /// with nothing sent when the range must go through start_now() instead (not resident,
  /// reaching past the known size, a blocking destination, a file kind that needed a fallback,
  /// or a failed call, which start_now() meets again and reports). `full`: the socket took
  /// less than `length` (EAGAIN or a short send): start_now() the rest with writable_first.
  /// Precondition: !busy(); `length` at most kMaxIoChunk.
  std::uint64_t sendfile_now(endpoint src, int dst_fd, std::uint64_t length, bool& full);
  /// start_now(src, dst, length, more_after, false) for the common case without a transfer:
  /// a resident file range of at most a chunk (options::splice_chunk, and the pipe's size)
  /// goes file -> pipe -> an O_NONBLOCK destination
  /// by two splice(2) calls on the caller's thread. True when every byte went (counted as one
  /// splice transfer; on_complete does not run). False otherwise, and then a transfer of the
  /// range is under way exactly as start_now() would have made it (the bytes these calls
  /// moved are in its moved(); on_complete reports its end, possibly before this returns).
  /// Precondition: !busy().
  bool splice_now(endpoint src, endpoint dst, std::uint64_t length, bool more_after);
  /// Cancels what is in flight; on_complete follows with ECANCELED (or the real outcome).
  void cancel();

  bool busy() const noexcept { return busy_; }
  /// Bytes the destination accepted in the current (or last) transfer.
  std::uint64_t moved() const noexcept { return moved_; }
  /// The path the last chunk took.
  transfer_path path() const noexcept { return path_; }
  const splice_counters& counters() const noexcept { return counters_; }

  // ---- the seeds' four steps (public for tests and for callers that drive them) ------------
  /// Bytes the source can give now, at most `want`; for a file, capped at its current size
  /// minus the offset (0 when the file ended). Sets `ec` when fstat fails. The size is fstat'ed
  /// only when the range reaches past the size last seen for this fd (kept across transfers)
  /// or after the source ended early: a file that shrank shows up as a short or empty pull,
  /// which measures it again.
  std::uint64_t prepare_read(std::uint64_t want, std::error_code& ec);
  /// Reserves a pipe for `n` bytes (n shrinks to the pipe's free room) and returns the splice
  /// flags for committing them: SPLICE_F_MORE when bytes follow those `n` (more of a file
  /// range, or `more_after`). Sets `ec` when no pipe is had.
  unsigned prepare_write(std::size_t& n, std::error_code& ec);
  /// Queues IORING_OP_SPLICE source -> pipe for `n` bytes (not yet submitted).
  void pull_fd(std::size_t n);
  /// Queues IORING_OP_SPLICE pipe -> destination for `n` bytes with `flags`.
  void commit_write(std::size_t n, unsigned flags);

 protected:
  /// The transfer ended: all bytes moved, the source ended, or an error. Runs on the loop; may
  /// start the next transfer or destroy *this.
  virtual void on_complete(std::error_code ec, std::uint64_t moved) = 0;
  /// The destination accepted `bytes` more (progress for send timeouts): reported once per run
  /// of inline steps that ends in a wait or a yield, not per system call (bytes of the run that
  /// completes the transfer come with on_complete). Default: nothing.
  virtual void on_progress(std::uint64_t bytes) { (void)bytes; }

 private:
  struct step_op;
  friend struct step_op;
  enum class step : std::uint8_t { pull, commit, poll, read, write };

  void setup(endpoint src, endpoint dst, std::uint64_t length, bool more_after,
             bool sendfile_if_resident);
  void use_source(endpoint src);
  /// What sendfile_now() and splice_now() need before their calls: inline steps allowed, no
  /// file kind with a recorded fallback, an O_NONBLOCK destination, and `length` bytes of the
  /// file there (its known size) and resident. A range of the source and destination it last
  /// accepted is answered from the caches (ready_as_before: most messages after the first on
  /// a connection), the rest by check_range_ready(). Per 4 KiB message with warm caches
  /// (tests/bench/transmit_bench), against checking every range: sendfile 36.5 -> 27.5 ns
  /// (516 -> 414 instructions), the pipe's two splices 43.5 -> 39 ns (672 -> 575).
  bool whole_range_ready(endpoint src, int dst_fd, std::uint64_t length) {
    return ready_as_before(src, dst_fd, length) || check_range_ready(src, dst_fd, length);
  }
  /// True for a range within the size and the resident window recorded for the source and
  /// destination check_range_ready() last accepted; false means "check", not "not ready".
  bool ready_as_before(endpoint src, int dst_fd, std::uint64_t length) const noexcept {
    const auto off = static_cast<std::uint64_t>(src.offset);
    return src.is_file() && src.fd == resident_fd_ && src.fd == size_fd_ &&
           dst_fd == checked_dst_fd_ && dst_nonblocking_ && !src_eof_ && length != 0 &&
           off >= resident_from_ && off + length <= resident_until_ &&
           off + length <= known_size_ && !pool_.has_fallbacks();
  }
  /// whole_range_ready() in full; makes `src` the source for the caches.
  bool check_range_ready(endpoint src, int dst_fd, std::uint64_t length);
  bool nonblocking_stream(int dst_fd);
  void next();
  void submit_pair(std::size_t n, unsigned flags);
  /// The `n` bytes at the source offset are in the page cache: within the window the last
  /// cachestat found resident, or measure_residency() says so.
  bool resident(std::uint64_t n) {
    const auto off = static_cast<std::uint64_t>(src_.offset);
    if (resident_fd_ == src_.fd && off >= resident_from_ && off + n <= resident_until_) return true;
    return measure_residency(n);
  }
  bool measure_residency(std::uint64_t n);
  void pump_inline(bool allow_sendfile);
  bool pull_inline();
  /// A file source read gave 0 bytes: true when it did so before with none read since.
  bool source_ended();
  void sendfile_pump(bool check_residency);
  void yield();
  void report_progress();
  void committed(std::uint64_t n);
  void classify(int src_fd, int dst_fd);
  void step_done(step s, int result);
  void evaluate();
  void wait_ready(int fd, bool write);
  void fall_back(transfer_path to);
  void sendfile_step();
  void read_step();
  void read_done(int result);
  void write_done(int result);
  void write_step();
  void drain_pipe();
  void finish(std::error_code ec);
  /// True when bytes of the message follow what is now in the pipe / user buffer.
  bool more_pending() const noexcept {
    return held_ > 0 || (src_.is_file() && left_ > 0) || more_after_;
  }
  static void run_kick(runtime::task_node* t, bool invoke);
  /// Bytes moved by path `p` in this transfer (counted per path at finish()).
  void mark_used(transfer_path p) noexcept { used_paths_ |= 1u << static_cast<unsigned>(p); }
  unsigned used(transfer_path p) const noexcept {
    return (used_paths_ >> static_cast<unsigned>(p)) & 1u;
  }

  runtime::context& ctx_;
  pipe_pool& pool_;
  const options& opts_;
  std::unique_ptr<step_op> pull_, commit_, poll_, io_;
  std::unique_ptr<std::byte[]> buffer_;  // read_send fallback and pipe draining
  std::size_t buffer_fill_ = 0;          // bytes in buffer_ not yet written
  std::size_t buffer_sent_ = 0;
  pipe_handle pipe_;
  endpoint src_, dst_;
  std::uint64_t left_ = 0;  // bytes still to move out of the source
  std::uint64_t moved_ = 0;
  std::uint64_t held_ = 0;        // bytes in the pipe
  std::uint64_t unreported_ = 0;  // bytes committed since the last on_progress
  std::uint64_t known_size_ = 0;  // file source size at the last fstat (of size_fd_)
  int size_fd_ = -1;  // kept across transfers: a stale size is corrected by the short pull
  // Residency: bytes [resident_from_, resident_until_) of resident_fd_ were all in the page
  // cache at the last cachestat.
  int resident_fd_ = -1;
  std::uint64_t resident_from_ = 0, resident_until_ = 0;
  // Destination check (F_GETFL) cached per fd: a stream opened O_NONBLOCK commits inline.
  int checked_dst_fd_ = -1;
  bool dst_nonblocking_ = false;
  bool inline_ok_ = false;    // this transfer may try steps inline
  bool sendfile_ok_ = false;  // resident ranges of this transfer go by sendfile(2)
  // file_kind of the last classified (src, dst) pair (only needed once a fallback exists).
  int kind_src_fd_ = -1, kind_dst_fd_ = -1;
  int pull_result_ = 0, commit_result_ = 0;
  unsigned pending_ = 0;  // SQEs of the current round not yet completed
  bool pull_issued_ = false;
  struct kick_node : runtime::task_node {
    splice_pipe* self = nullptr;
  } kick_;
  file_kind kind_{};
  bool kind_known_ = false;
  bool more_after_ = false;
  bool busy_ = false;
  bool cancelled_ = false;
  bool src_eof_ = false;
  // A file source gave 0 bytes once since it last gave any: prepare_read measures it again,
  // and a second empty read means it ended (a shrunk file, or a size fstat overstates, as
  // sysfs's 4096 does).
  bool ended_once_ = false;
  std::uint8_t used_paths_ = 0;  // mark_used(): a bit per path that moved bytes this transfer
  transfer_path path_ = transfer_path::splice;
  splice_counters counters_;
};

}  // namespace pagewire::net
