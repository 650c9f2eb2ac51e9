#include <algorithm>
#include <atomic>
#include <cassert>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utility>

#include <pagewire/fs/stats.h>
#include <pagewire/net/splice_pipe.h>
#include <pagewire/runtime/sys_error.h>

namespace pagewire::net {
namespace {

using runtime::no_error;
using runtime::sys_error;

// cachestat(2) (Linux 6.5; the same number on every architecture). The system headers here
// predate it.
#ifndef __NR_cachestat
#define __NR_cachestat 451  // NOLINT(bugprone-reserved-identifier): the kernel's name
#endif
struct cachestat_range_abi {
  std::uint64_t off, len;
};
struct cachestat_abi {
  std::uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
};
std::atomic<bool> g_no_cachestat{false};  // ENOSYS once: never ask again

// Pages of [off, off + len) all in the page cache (false when cachestat cannot say).
bool range_cached(int fd, std::uint64_t off, std::uint64_t len) {
  if (g_no_cachestat.load(std::memory_order_relaxed)) return false;
  cachestat_range_abi range{off, len};
  cachestat_abi cs{};
  if (::syscall(__NR_cachestat, fd, &range, &cs, 0) != 0) {
    if (errno == ENOSYS) g_no_cachestat.store(true, std::memory_order_relaxed);
    return false;
  }
  const std::uint64_t pages = (off + len + 4095) / 4096 - off / 4096;
  return cs.nr_cache >= pages;
}

}  // namespace

/// One reusable SQE of the state machine: a splice, a poll, or a read/recv/write/send of the
/// user buffer. Parameters are set before each start.
struct splice_pipe::step_op final : runtime::operation {
  step_op(splice_pipe& o, step k) : owner(o), kind(k) {}
  void prepare(io_uring_sqe* sqe) override {
    switch (opcode) {
      case IORING_OP_SPLICE:
        io_uring_prep_splice(sqe, fd, off, fd_out, off_out, len, flags);
        break;
      case IORING_OP_POLL_ADD:
        io_uring_prep_poll_add(sqe, fd, flags);
        break;
      case IORING_OP_READ:
        io_uring_prep_read(sqe, fd, addr, len, static_cast<__u64>(off));
        break;
      case IORING_OP_WRITE:
        io_uring_prep_write(sqe, fd, addr, len, static_cast<__u64>(off));
        break;
      case IORING_OP_RECV:
        io_uring_prep_recv(sqe, fd, addr, len, 0);
        break;
      case IORING_OP_SEND:
        io_uring_prep_send(sqe, fd, addr, len, static_cast<int>(flags));
        break;
      default:
        assert(false);
    }
  }
  void complete(int result, unsigned) override { owner.step_done(kind, result); }

  splice_pipe& owner;
  step kind;
  std::uint8_t opcode = IORING_OP_NOP;
  int fd = -1;
  std::int64_t off = -1;
  int fd_out = -1;
  std::int64_t off_out = -1;
  void* addr = nullptr;
  unsigned len = 0;
  unsigned flags = 0;
};

splice_pipe::splice_pipe(runtime::context& ctx, pipe_pool& pool, const options& opts)
    : ctx_(ctx),
      pool_(pool),
      opts_(opts),
      pull_(std::make_unique<step_op>(*this, step::pull)),
      commit_(std::make_unique<step_op>(*this, step::commit)),
      poll_(std::make_unique<step_op>(*this, step::poll)),
      io_(std::make_unique<step_op>(*this, step::read)) {
  kick_.self = this;
  kick_.fn = &splice_pipe::run_kick;
}

splice_pipe::~splice_pipe() {
  assert(!busy_);
  pool_.release(pipe_, held_ == 0);
}

[[gnu::hot]] void splice_pipe::start(endpoint src, endpoint dst, std::uint64_t length,
                                     bool more_after, bool sendfile_if_resident) {
  setup(src, dst, length, more_after, sendfile_if_resident);
  // The first step runs from the loop's task queue (no system call), so that a transfer that
  // completes inline still completes on the loop, never inside start().
  ctx_.defer(kick_);
}

[[gnu::hot]] void splice_pipe::start_now(endpoint src, endpoint dst, std::uint64_t length,
                                         bool more_after, bool sendfile_if_resident,
                                         bool writable_first) {
  setup(src, dst, length, more_after, sendfile_if_resident);
  if (writable_first) return wait_ready(dst.fd, true);
  // What next() would reach for a fresh transfer (nothing held, nothing cancelled), without
  // the hops: inline_ok_ is only set for the splice path, sendfile_ok_ only with inline_ok_.
  if (sendfile_ok_) return sendfile_pump(true);
  if (inline_ok_) return pump_inline(false);
  next();
}

[[gnu::hot]] std::uint64_t splice_pipe::sendfile_now(endpoint src, int dst_fd, std::uint64_t length,
                                                     bool& full) {
  assert(!busy_ && length <= kMaxIoChunk);
  full = false;
  if (!whole_range_ready(src, dst_fd, length)) return 0;
  off_t off = src.offset;
  const ssize_t r = ::sendfile(dst_fd, src.fd, &off, static_cast<std::size_t>(length));
  ++counters_.syscalls;
  if (r <= 0) {
    full = r < 0 && errno == EAGAIN;
    return 0;
  }
  const auto sent = static_cast<std::uint64_t>(r);
  counters_.sendfile_bytes += sent;
  full = sent < length;
  // A range that went whole is one transfer; the rest of a short one is counted by the
  // start_now() transfer that sends it.
  if (!full) ++counters_.sendfile_transfers;
  return sent;
}

[[gnu::hot]] bool splice_pipe::splice_now(endpoint src, endpoint dst, std::uint64_t length,
                                          bool more_after) {
  assert(!busy_);
  if (dst.is_file() || !whole_range_ready(src, dst.fd, length)) {
    start_now(src, dst, length, more_after, false);
    return false;
  }
  std::error_code ec = no_error();
  if (!pipe_) {
    pipe_ = pool_.acquire(ec);
    // Longer than a chunk or the pipe: the transfer pulls it in parts (or, without a pipe,
    // reads and sends).
    if (ec || length > std::min<std::uint64_t>(pipe_.capacity, opts_.splice_chunk)) {
      start_now(src, dst, length, more_after, false);
      return false;
    }
  }
  loff_t off = src.offset;
  const ssize_t pulled =
      ::splice(src.fd, &off, pipe_.write_fd, nullptr, length, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  ++counters_.syscalls;
  ssize_t sent = -1;
  int err = 0;
  if (pulled == static_cast<ssize_t>(length)) {
    ++counters_.inline_pulls;
    const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more_after ? SPLICE_F_MORE : 0u);
    sent = ::splice(pipe_.read_fd, nullptr, dst.fd, nullptr, length, flags);
    ++counters_.syscalls;
    err = sent < 0 ? errno : 0;
    if (sent == static_cast<ssize_t>(length)) {
      counters_.splice_bytes += length;
      ++counters_.splice_transfers;
      if (more_after) ++counters_.more_commits;
      pool_.release(pipe_, true);
      pipe_ = {};
      return true;
    }
  }
  // Not all of it: the transfer goes on from what these calls did, as pump_inline would have.
  setup(src, dst, length, more_after, false);
  if (pulled > 0) {
    if (pulled != static_cast<ssize_t>(length)) ++counters_.inline_pulls;  // counted if whole
    held_ = static_cast<std::uint64_t>(pulled);
    left_ -= held_;
    src_.offset += pulled;
  }
  if (sent > 0) {
    committed(static_cast<std::uint64_t>(sent));
    if (more_after) ++counters_.more_commits;
  }
  // The socket is full (a short commit, or EAGAIN): wait for room. Else (a short or failed
  // pull, a commit that failed otherwise) the pump meets it again and handles it.
  if (held_ > 0 && (sent > 0 || err == EAGAIN)) {
    wait_ready(dst.fd, true);
  } else {
    pump_inline(false);
  }
  return false;
}

// whole_range_ready() without its caches' shortcut (splice_pipe.h).
[[gnu::hot]] bool splice_pipe::check_range_ready(endpoint src, int dst_fd, std::uint64_t length) {
  if (!opts_.splice_inline || !src.is_file() || length == 0 || pool_.has_fallbacks() ||
      !nonblocking_stream(dst_fd))
    return false;
  use_source(src);  // prepare_read() and resident() read it, with their caches
  std::error_code ec = no_error();
  return prepare_read(length, ec) == length && resident(length);
}

// A new source: the size and residency caches are kept only for the same descriptor.
[[gnu::hot]] void splice_pipe::use_source(endpoint src) {
  src_ = src;
  src_eof_ = false;
  ended_once_ = false;
  if (src.fd != size_fd_) {
    size_fd_ = src.fd;
    known_size_ = 0;
  }
  if (src.fd != resident_fd_) resident_fd_ = -1;
}

// The destination check of setup(), cached per descriptor: F_GETFL says O_NONBLOCK.
[[gnu::hot]] bool splice_pipe::nonblocking_stream(int dst_fd) {
  if (dst_fd != checked_dst_fd_) {
    const int fl = ::fcntl(dst_fd, F_GETFL);
    ++counters_.syscalls;
    checked_dst_fd_ = dst_fd;
    dst_nonblocking_ = fl >= 0 && (fl & O_NONBLOCK) != 0;
  }
  return dst_nonblocking_;
}

[[gnu::hot]] void splice_pipe::setup(endpoint src, endpoint dst, std::uint64_t length,
                                     bool more_after, bool sendfile_if_resident) {
  assert(!busy_);
  busy_ = true;
  cancelled_ = false;
  use_source(src);
  dst_ = dst;
  left_ = length;
  moved_ = 0;
  held_ = 0;
  unreported_ = 0;
  used_paths_ = 0;
  buffer_fill_ = buffer_sent_ = 0;
  more_after_ = more_after;
  kind_known_ = false;
  path_ = transfer_path::splice;
  if (pool_.has_fallbacks()) {
    classify(src.fd, dst.fd);
    path_ = pool_.path_for(kind_);
  }
  if (path_ == transfer_path::sendfile && !src.is_file()) path_ = transfer_path::read_send;
  inline_ok_ = false;
  if (opts_.splice_inline && src.is_file() && !dst.is_file() && path_ == transfer_path::splice) {
    inline_ok_ = nonblocking_stream(dst.fd);
  }
  sendfile_ok_ = inline_ok_ && sendfile_if_resident;
}

void splice_pipe::classify(int src_fd, int dst_fd) {
  // Kept per (src, dst) descriptor pair: a reused descriptor number that now names another
  // kind at worst takes a path that still works (sendfile, read+send) or is refused once more.
  if (kind_src_fd_ != src_fd || kind_dst_fd_ != dst_fd) {
    kind_ = file_kind::of(src_fd, dst_fd);
    counters_.syscalls += 4;  // fstat + fstatfs of both ends
    kind_src_fd_ = src_fd;
    kind_dst_fd_ = dst_fd;
  }
  kind_known_ = true;
}

[[gnu::hot]] void splice_pipe::run_kick(runtime::task_node* t, bool invoke) {
  if (invoke) static_cast<kick_node*>(t)->self->next();
}

void splice_pipe::cancel() {
  if (!busy_) return;
  cancelled_ = true;
  for (step_op* op : {pull_.get(), commit_.get(), poll_.get(), io_.get()}) {
    if (op->in_flight()) ctx_.cancel(*op);
  }
}

// ---- the four steps ------------------------------------------------------------------------

[[gnu::hot]] std::uint64_t splice_pipe::prepare_read(std::uint64_t want, std::error_code& ec) {
  ec = no_error();
  if (!src_.is_file()) return want;
  const auto off = static_cast<std::uint64_t>(src_.offset);
  if (off + want > known_size_ || src_eof_) {
    struct stat st {};
    ++counters_.syscalls;
    if (::fstat(src_.fd, &st) != 0) {
      ec = sys_error(errno);
      return 0;
    }
    known_size_ = static_cast<std::uint64_t>(st.st_size);
    src_eof_ = false;
  }
  if (off >= known_size_) return 0;
  return std::min(want, known_size_ - off);
}

[[gnu::hot]] unsigned splice_pipe::prepare_write(std::size_t& n, std::error_code& ec) {
  ec = no_error();
  if (!pipe_) {
    pipe_ = pool_.acquire(ec);
    if (ec) return 0;
  }
  n = std::min<std::size_t>(n, pipe_.capacity - held_);
  // From the final n: a pipe smaller than the chunk leaves bytes of the range for later pulls.
  const bool more = src_.is_file() ? (left_ > n || more_after_) : more_after_;
  return SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0u);
}

bool splice_pipe::source_ended() {
  src_eof_ = true;
  resident_fd_ = -1;
  return std::exchange(ended_once_, true);
}

[[gnu::hot]] void splice_pipe::pull_fd(std::size_t n) {
  step_op& op = *pull_;
  op.opcode = IORING_OP_SPLICE;
  op.fd = src_.fd;
  op.off = src_.is_file() ? src_.offset : -1;
  op.fd_out = pipe_.write_fd;
  op.off_out = -1;
  op.len = static_cast<unsigned>(n);
  op.flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
}

[[gnu::hot]] void splice_pipe::commit_write(std::size_t n, unsigned flags) {
  step_op& op = *commit_;
  op.opcode = IORING_OP_SPLICE;
  op.fd = pipe_.read_fd;
  op.off = -1;
  op.fd_out = dst_.fd;
  op.off_out = dst_.is_file() ? dst_.offset : -1;
  op.len = static_cast<unsigned>(n);
  // SPLICE_F_NONBLOCK: an empty pipe (after a faulted pull) or a full socket answers EAGAIN
  // instead of parking an io-wq worker.
  op.flags = flags | SPLICE_F_NONBLOCK;
}

// ---- the state machine ---------------------------------------------------------------------

[[gnu::hot]] void splice_pipe::next() {
  if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
  if (buffer_fill_ > buffer_sent_) return write_step();
  if (inline_ok_ && path_ == transfer_path::splice) return pump_inline(sendfile_ok_);
  if (held_ > 0) {
    if (path_ != transfer_path::splice) return drain_pipe();
    // Bytes a short pull left in the pipe go out alone.
    const bool more = (src_.is_file() && left_ > 0) || more_after_;
    commit_write(static_cast<std::size_t>(held_), SPLICE_F_MOVE | (more ? SPLICE_F_MORE : 0u));
    pull_issued_ = false;
    pending_ = 1;
    commit_result_ = 0;
    ctx_.start(*commit_);
    return;
  }
  if (left_ == 0) return finish(no_error());
  if (src_eof_ && !src_.is_file()) return finish(no_error());  // a stream source ended
  if (path_ == transfer_path::sendfile) return sendfile_pump(false);
  if (path_ == transfer_path::read_send) return read_step();

  std::error_code ec = no_error();
  const std::uint64_t want = std::min<std::uint64_t>(left_, opts_.splice_chunk);
  std::size_t n = static_cast<std::size_t>(prepare_read(want, ec));
  if (ec) return finish(ec);
  if (n == 0) return finish(sys_error(ENODATA));  // the file ended before the range
  const unsigned flags = prepare_write(n, ec);
  if (ec) {  // no pipe (EMFILE): move this transfer through user memory
    path_ = transfer_path::read_send;
    return read_step();
  }
  submit_pair(n, flags);
}

bool splice_pipe::measure_residency(std::uint64_t n) {
  const auto off = static_cast<std::uint64_t>(src_.offset);
  resident_fd_ = -1;
  // Look ahead a window (clipped at the known size) so small pulls share one call.
  std::uint64_t len = std::max<std::uint64_t>(n, opts_.residency_window);
  if (known_size_ > off) len = std::min(len, known_size_ - off);
  len = std::max(len, n);
  ++counters_.syscalls;
  bool cached = range_cached(src_.fd, off, len);
  if (!cached && len > n) {  // the window is not all there; maybe this pull is
    ++counters_.syscalls;
    len = n;
    cached = range_cached(src_.fd, off, len);
  }
  if (!cached) return false;
  resident_fd_ = src_.fd;
  resident_from_ = off;
  resident_until_ = off + len;
  return true;
}

// One pull of up to a chunk into the pipe, behind what it still holds, on the loop. True: go on
// to commit what the pipe holds (possibly nothing yet). False: the transfer left the loop (it
// finished, fell back, or went to the linked SQEs because a worker may have to wait).
[[gnu::hot]] bool splice_pipe::pull_inline() {
  std::error_code ec = no_error();
  auto n = static_cast<std::size_t>(
      prepare_read(std::min<std::uint64_t>(left_, opts_.splice_chunk), ec));
  if (ec) {
    finish(ec);
    return false;
  }
  if (n == 0) {  // nothing more can be read now: commit what is held, or the file ended early
    if (held_ > 0) return true;
    finish(sys_error(ENODATA));
    return false;
  }
  const unsigned flags = prepare_write(n, ec);  // may shorten n to the pipe's room
  if (ec) {  // no pipe (EMFILE): move this transfer through user memory
    path_ = transfer_path::read_send;
    read_step();
    return false;
  }
  if (!resident(n)) {  // a worker may wait for the disk; what is held goes out first
    if (held_ > 0) return true;
    submit_pair(n, flags);
    return false;
  }
  loff_t off = src_.offset;
  const ssize_t r =
      ::splice(src_.fd, &off, pipe_.write_fd, nullptr, n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
  ++counters_.syscalls;
  if (r < 0) {
    const int err = errno;
    if (err == EINVAL) {
      fall_back(transfer_path::sendfile);
      next();
      return false;
    }
    if (err != EAGAIN && err != EINTR) {
      finish(sys_error(err));
      return false;
    }
    // EAGAIN (no room left in a topped-up pipe) or EINTR: commit what is held, or let a worker
    // do the pull.
    if (held_ > 0) return true;
    submit_pair(n, flags);
    return false;
  }
  if (r == 0) {  // the file ended before the range: prepare_read measures again
    if (source_ended() && held_ == 0) {
      finish(sys_error(ENODATA));
      return false;
    }
    return true;
  }
  ended_once_ = false;
  ++counters_.inline_pulls;
  if (held_ > 0) ++counters_.top_ups;
  held_ += static_cast<std::uint64_t>(r);
  left_ -= std::min<std::uint64_t>(left_, static_cast<std::uint64_t>(r));
  src_.offset += r;
  return true;
}

// Inline steps as one loop: pull (topping up the pipe behind what it still holds), commit,
// again, until the quantum is spent, the socket is full or the range ended. Every exit either
// completes, waits (POLLOUT / linked SQEs) or yields, after reporting progress once.
[[gnu::hot]] void splice_pipe::pump_inline(bool allow_sendfile) {
  std::uint64_t budget = opts_.transfer_quantum;
  for (;;) {
    if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
    if (left_ > 0 && (!pipe_ || held_ < pipe_.capacity)) {
      if (allow_sendfile && held_ == 0) return sendfile_pump(true);
      if (!pull_inline()) return;
    }
    if (held_ == 0) {
      if (left_ == 0) return finish(no_error());
      continue;
    }
    const bool more = left_ > 0 || more_after_;
    const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK | (more ? SPLICE_F_MORE : 0u);
    const ssize_t w =
        ::splice(pipe_.read_fd, nullptr, dst_.fd, nullptr, static_cast<std::size_t>(held_), flags);
    ++counters_.syscalls;
    if (w < 0) {
      const int err = errno;
      if (err == EAGAIN || err == EINTR) return wait_ready(dst_.fd, true);
      if (err == EINVAL) {
        fall_back(transfer_path::read_send);
        return next();
      }
      return finish(sys_error(err));
    }
    committed(static_cast<std::uint64_t>(w));
    if (more) ++counters_.more_commits;
    if (held_ == 0 && left_ == 0) return finish(no_error());
    // Short commit: the socket is full. Wait for room; the pipe is topped up before the next.
    if (held_ > 0) return wait_ready(dst_.fd, true);
    budget -= std::min(budget, static_cast<std::uint64_t>(w));
    if (budget == 0) return yield();
  }
}

void splice_pipe::yield() {
  ++counters_.yields;
  report_progress();
  ctx_.defer(kick_);
}

[[gnu::hot]] void splice_pipe::report_progress() {
  if (unreported_ == 0) return;
  on_progress(std::exchange(unreported_, 0));
}

[[gnu::hot]] void splice_pipe::committed(std::uint64_t n) {
  held_ -= n;
  moved_ += n;
  counters_.splice_bytes += n;
  mark_used(transfer_path::splice);
  if (dst_.is_file()) dst_.offset += static_cast<std::int64_t>(n);
  unreported_ += n;
}

[[gnu::hot]] void splice_pipe::submit_pair(std::size_t n, unsigned flags) {
  report_progress();
  pull_fd(n);
  commit_write(n, flags);
  const runtime::linked_op ops[2] = {{pull_.get(), {}}, {commit_.get(), {}}};
  pull_issued_ = true;
  ++counters_.linked_pairs;
  pending_ = 2;
  pull_result_ = commit_result_ = 0;
  if (auto ec = ctx_.start_linked(ops)) {
    pending_ = 0;
    finish(ec);
  }
}

[[gnu::hot]] void splice_pipe::step_done(step s, int result) {
  switch (s) {
    case step::pull:
      pull_result_ = result;
      if (result > 0) {
        ended_once_ = false;
        held_ += static_cast<std::uint64_t>(result);
        left_ -= std::min<std::uint64_t>(left_, static_cast<std::uint64_t>(result));
        if (src_.is_file()) src_.offset += result;
      } else if (result == 0) {
        if (!src_.is_file()) {
          src_eof_ = true;
        } else if (source_ended()) {
          pull_result_ = -ENODATA;  // evaluate() ends the transfer
        }
      }
      break;
    case step::commit:
      commit_result_ = result;
      if (result > 0) {
        committed(static_cast<std::uint64_t>(result));
        if (commit_->flags & SPLICE_F_MORE) ++counters_.more_commits;
      }
      break;
    case step::poll:
      // -ECANCELED: a cancel from outside cancel() (the context shutting down, the owner
      // cancelling by fd) ends the transfer as cancel() does; waiting again would outlive it.
      if (result == -ECANCELED) return finish(std::make_error_code(std::errc::operation_canceled));
      if (result < 0) return finish(sys_error(-result));
      return next();
    case step::read:
      return read_done(result);
    case step::write:
      return write_done(result);
  }
  if (--pending_ == 0) evaluate();
}

[[gnu::hot]] void splice_pipe::evaluate() {
  if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
  report_progress();
  if (pull_issued_ && pull_result_ < 0) {
    const int err = -pull_result_;
    if (err == EAGAIN) return wait_ready(src_.fd, false);
    if (err == EINVAL) {
      fall_back(src_.is_file() && !dst_.is_file() ? transfer_path::sendfile
                                                  : transfer_path::read_send);
      return next();
    }
    return finish(sys_error(err));
  }
  if (commit_result_ < 0) {
    const int err = -commit_result_;
    // A short pull broke the link: go on. A full pull means the commit itself was
    // cancelled (see step::poll), which ends the transfer.
    if (err == ECANCELED && pull_issued_ && static_cast<unsigned>(pull_result_) < pull_->len)
      return next();
    if (err == ECANCELED) return finish(std::make_error_code(std::errc::operation_canceled));
    if (err == EAGAIN) {
      if (held_ == 0) return next();  // nothing was pulled (a faulted pull): pull again
      return wait_ready(dst_.fd, true);
    }
    if (err == EINVAL) {
      fall_back(transfer_path::read_send);
      return next();
    }
    return finish(sys_error(err));
  }
  next();
}

[[gnu::hot]] void splice_pipe::wait_ready(int fd, bool write) {
  report_progress();
  step_op& op = *poll_;
  op.opcode = IORING_OP_POLL_ADD;
  op.fd = fd;
  op.flags = write ? POLLOUT : POLLIN;
  ++counters_.polls;
  ctx_.start(op);
}

void splice_pipe::fall_back(transfer_path to) {
  if (to == transfer_path::sendfile && !src_.is_file()) to = transfer_path::read_send;
  if (!kind_known_) classify(src_.fd, dst_.fd);
  pool_.record_fallback(kind_, to);
  path_ = std::max(path_, to);
}

// ---- fallbacks -----------------------------------------------------------------------------

// sendfile(2) calls on the loop, up to the quantum per run. `check_residency`: the transmit
// chose sendfile for resident ranges (options::file_range_path); a range not all in the page
// cache goes through the pipe instead. Without it this is the fallback for a file kind that
// refuses splice (then a non-resident file is read on the loop, as before).
[[gnu::hot]] void splice_pipe::sendfile_pump(bool check_residency) {
  std::uint64_t budget = opts_.transfer_quantum;
  for (;;) {
    if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
    if (left_ == 0) return finish(no_error());
    std::error_code ec = no_error();
    const std::uint64_t want = std::min({left_, budget, std::uint64_t{kMaxIoChunk}});
    const std::uint64_t n = prepare_read(want, ec);
    if (ec) return finish(ec);
    if (n == 0) return finish(sys_error(ENODATA));
    if (check_residency && !resident(n)) return pump_inline(false);
    off_t off = src_.offset;
    const ssize_t r = ::sendfile(dst_.fd, src_.fd, &off, static_cast<std::size_t>(n));
    ++counters_.syscalls;
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return wait_ready(dst_.fd, true);
      if (errno == EINVAL || errno == ENOSYS) {
        fall_back(transfer_path::read_send);
        return next();
      }
      return finish(sys_error(errno));
    }
    if (r == 0) {  // the file shrank between fstat and sendfile: prepare_read measures again
      if (source_ended()) return finish(sys_error(ENODATA));
      continue;
    }
    ended_once_ = false;
    const auto moved = static_cast<std::uint64_t>(r);
    src_.offset += r;
    left_ -= moved;
    moved_ += moved;
    counters_.sendfile_bytes += moved;
    mark_used(transfer_path::sendfile);
    unreported_ += moved;
    if (left_ == 0) return finish(no_error());
    // Short: the socket is full, wait for room (an immediate retry would answer EAGAIN).
    if (moved < n) return wait_ready(dst_.fd, true);
    budget -= std::min(budget, moved);
    if (budget == 0) return yield();
  }
}

void splice_pipe::read_step() {
  if (!buffer_) buffer_ = std::make_unique<std::byte[]>(opts_.splice_chunk);
  std::error_code ec = no_error();
  const std::uint64_t n = prepare_read(std::min<std::uint64_t>(left_, opts_.splice_chunk), ec);
  if (ec) return finish(ec);
  if (n == 0) return finish(sys_error(ENODATA));
  step_op& op = *io_;
  op.kind = step::read;
  op.opcode = src_.is_file() ? IORING_OP_READ : IORING_OP_RECV;
  op.fd = src_.fd;
  op.off = src_.offset;
  op.addr = buffer_.get();
  op.len = static_cast<unsigned>(n);
  ctx_.start(op);
}

void splice_pipe::read_done(int result) {
  if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
  if (result < 0) {
    if (result == -EAGAIN) return wait_ready(src_.fd, false);
    return finish(sys_error(-result));
  }
  if (result == 0) {  // end of source: a stream ends here, a file is re-measured once
    if (!src_.is_file()) {
      src_eof_ = true;
    } else if (source_ended()) {
      return finish(sys_error(ENODATA));
    }
    return next();
  }
  ended_once_ = false;
  const auto n = static_cast<std::uint64_t>(result);
  fs::stats::record_copy(static_cast<std::size_t>(n), fs::copy_reason::fallback);
  buffer_fill_ = static_cast<std::size_t>(n);
  buffer_sent_ = 0;
  left_ -= std::min(left_, n);
  if (src_.is_file()) src_.offset += result;
  write_step();
}

void splice_pipe::write_done(int result) {
  if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
  if (result < 0) {
    if (result == -EAGAIN) return wait_ready(dst_.fd, true);
    return finish(sys_error(-result));
  }
  if (result == 0) return finish(sys_error(EIO));
  const auto n = static_cast<std::uint64_t>(result);
  buffer_sent_ += static_cast<std::size_t>(n);
  moved_ += n;
  counters_.read_send_bytes += n;
  mark_used(transfer_path::read_send);
  if (dst_.is_file()) dst_.offset += result;
  on_progress(n);
  if (buffer_sent_ == buffer_fill_) buffer_fill_ = buffer_sent_ = 0;
  next();
}

void splice_pipe::drain_pipe() {
  if (!buffer_) buffer_ = std::make_unique<std::byte[]>(opts_.splice_chunk);
  const std::size_t want = static_cast<std::size_t>(
      std::min<std::uint64_t>(held_, static_cast<std::uint64_t>(opts_.splice_chunk)));
  const ssize_t r = ::read(pipe_.read_fd, buffer_.get(), want);
  ++counters_.syscalls;
  if (r <= 0) return finish(sys_error(r < 0 ? errno : EIO));
  fs::stats::record_copy(static_cast<std::size_t>(r), fs::copy_reason::fallback);
  held_ -= static_cast<std::uint64_t>(r);
  buffer_fill_ = static_cast<std::size_t>(r);
  buffer_sent_ = 0;
  write_step();
}

void splice_pipe::write_step() {
  step_op& op = *io_;
  op.kind = step::write;
  op.fd = dst_.fd;
  op.addr = buffer_.get() + buffer_sent_;
  op.len = static_cast<unsigned>(buffer_fill_ - buffer_sent_);
  if (dst_.is_file()) {
    op.opcode = IORING_OP_WRITE;
    op.off = dst_.offset;
  } else {
    op.opcode = IORING_OP_SEND;
    op.flags = static_cast<unsigned>(MSG_NOSIGNAL) | (more_pending() ? unsigned{MSG_MORE} : 0u);
  }
  ctx_.start(op);
}

[[gnu::hot]] void splice_pipe::finish(std::error_code ec) {
  unreported_ = 0;  // on_complete carries them (moved()): no progress report of its own
  if (used_paths_ != 0) {
    counters_.splice_transfers += used(transfer_path::splice);
    counters_.sendfile_transfers += used(transfer_path::sendfile);
    counters_.read_send_transfers += used(transfer_path::read_send);
  }
  if (pipe_) {  // reused only when known empty and nothing failed while it was in use
    pool_.release(pipe_, !ec && held_ == 0);
    pipe_ = {};
  }
  held_ = 0;
  busy_ = false;
  on_complete(ec, moved_);
}

}  // namespace pagewire::net
