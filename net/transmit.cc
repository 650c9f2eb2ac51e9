#include <algorithm>
#include <cassert>
#include <cerrno>
#include <sys/socket.h>

#include <pagewire/net/transmit.h>
#include <pagewire/runtime/coarse_clock.h>
#include <pagewire/runtime/sys_error.h>

namespace pagewire::net {

// The send-progress clock is runtime::coarse_now() (at most a tick early; send timeouts are
// seconds), read once per wait, not per message.

transmit_stats& transmit_stats::operator+=(const transmit_stats& o) noexcept {
  for (std::size_t i = 0; i < kSendPaths; ++i) {
    submissions[i] += o.submissions[i];
    bytes[i] += o.bytes[i];
  }
  transmits += o.transmits;
  errors += o.errors;
  zc_notifs += o.zc_notifs;
  zc_copied += o.zc_copied;
  zc_disabled += o.zc_disabled;
  more_flagged += o.more_flagged;
  short_sends += o.short_sends;
  yields += o.yields;
  top_ups += o.top_ups;
  inline_sends += o.inline_sends;
  syscalls += o.syscalls;
  return *this;
}

/// The gather child: one IORING_OP_SENDMSG at a time (what the socket refused inline).
struct transmit_op::send_child final : runtime::operation {
  explicit send_child(transmit_op& o) : owner(o) {}
  [[gnu::hot]] void prepare(io_uring_sqe* sqe) override {
    io_uring_prep_sendmsg(sqe, fd, &owner.msg_, msg_flags);
  }
  [[gnu::hot]] void complete(int result, unsigned) override { owner.child_done(result); }

  transmit_op& owner;
  int fd = -1;
  unsigned msg_flags = 0;
};

/// One SEND_ZC (or SENDMSG_ZC) run. The transmit goes on at its first CQE, the bytes the
/// socket took (partial(), IORING_CQE_F_MORE); the segments it sent stay in `held` until its
/// notification, the last CQE, says the kernel is done with their pages. Several can wait for
/// their notifications at once; the transmit completes after the last of them.
struct transmit_op::zc_child final : runtime::operation {
  explicit zc_child(transmit_op& o) : owner(o) {}
  [[gnu::hot]] void prepare(io_uring_sqe* sqe) override {
    if (opcode == IORING_OP_SENDMSG_ZC) {  // the kernel reads the msghdr before the first CQE
      io_uring_prep_sendmsg_zc(sqe, fd, &owner.msg_, msg_flags);
      sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
      return;
    }
    io_uring_prep_send_zc(sqe, fd, buf, len, static_cast<int>(msg_flags),
                          IORING_SEND_ZC_REPORT_USAGE);
    if (buf_index >= 0) {
      sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
      sqe->buf_index = static_cast<__u16>(buf_index);
    }
  }
  [[gnu::hot]] void partial(int result, unsigned) override { owner.zc_sent(*this, result); }
  [[gnu::hot]] void complete(int result, unsigned flags) override {
    owner.zc_done(*this, result, flags);
  }

  transmit_op& owner;
  std::uint8_t opcode = IORING_OP_SEND_ZC;
  int fd = -1;
  const void* buf = nullptr;
  std::size_t len = 0;
  int buf_index = -1;
  unsigned msg_flags = 0;
  bool result_seen = false;  // partial() ran: what is left is the notification
  bool tail_cut = false;     // held's last segment is the sent part of a longer one
  fs::chain held;            // what this run sent, until its notification
};

/// The file child: a splice_pipe whose completion advances the transmit.
struct transmit_op::file_child final : splice_pipe {
  file_child(transmit_op& o, runtime::context& ctx, pipe_pool& pool, const options& opts)
      : splice_pipe(ctx, pool, opts), owner(o) {}
  [[gnu::hot]] void on_complete(std::error_code ec, std::uint64_t moved) override {
    owner.file_done(ec, moved);
  }
  // splice_pipe reports once per run of inline steps, so this reads the clock once per run.
  void on_progress(std::uint64_t) override {
    owner.last_progress_ = runtime::coarse_now();
    owner.progress_pending_ = false;
  }
  transmit_op& owner;
};

struct transmit_op::kickoff : runtime::task_node {
  explicit kickoff(transmit_op& o) : self(&o) { fn = run; }
  [[gnu::hot]] static void run(runtime::task_node* t, bool invoke) {
    if (invoke) static_cast<kickoff*>(t)->self->next();
  }
  transmit_op* self;
};

transmit_op::transmit_op(runtime::context& ctx, const options& opts, pipe_pool& pipes)
    : ctx_(ctx),
      opts_(opts),
      send_(std::make_unique<send_child>(*this)),
      file_(std::make_unique<file_child>(*this, ctx, pipes, opts)),
      kickoff_(std::make_unique<kickoff>(*this)),
      iov_(opts.max_iovecs),
      zc_enabled_(ctx.probe().send_zc) {}

transmit_op::~transmit_op() {
  assert(!busy_ && zc_pending_ == 0);
}

[[gnu::hot]] void transmit_op::start(int fd, fs::chain&& message, send_flags flags) {
  assert(!busy_);
  busy_ = true;
  cancelled_ = false;
  more_after_ = flags == send_flags::more;
  fd_ = fd;
  chain_.clear();  // empty after a success; after an error, what was not sent
  chain_.swap(message);
  sent_ = 0;
  progress_pending_ = true;  // the start is stamped before the first wait, if one comes
  last_progress_ = clock::time_point::min();  // not stamped yet
  gather_by_sqe_ = false;
  // The first step runs from the loop's task queue (no system call): steps may complete inline
  // (gather_inline, inline splice), and a transmit never completes inside start().
  ctx_.defer(*kickoff_);
}

void transmit_op::yield() {
  ++stats_.yields;
  stamp_progress();
  ctx_.defer(*kickoff_);  // kickoff_ is idle: it ran the step that led here
}

[[gnu::hot]] void transmit_op::stamp_progress() noexcept {
  if (!progress_pending_) return;
  progress_pending_ = false;
  last_progress_ = runtime::coarse_now();
}

transmit_stats transmit_op::stats() const noexcept {
  transmit_stats s = stats_;
  const splice_counters& f = file_->counters();
  auto add = [&s](send_path p, std::uint64_t transfers, std::uint64_t bytes) {
    s.submissions[static_cast<std::size_t>(p)] += transfers;
    s.bytes[static_cast<std::size_t>(p)] += bytes;
  };
  add(send_path::splice, f.splice_transfers, f.splice_bytes);
  add(send_path::sendfile, f.sendfile_transfers, f.sendfile_bytes);
  add(send_path::fallback, f.read_send_transfers, f.read_send_bytes);
  s.syscalls += f.syscalls;
  s.yields += f.yields;
  s.top_ups += f.top_ups;
  return s;
}

transmit_op::clock::time_point transmit_op::last_progress() const noexcept {
  return last_progress_ == clock::time_point::min() ? runtime::coarse_now() : last_progress_;
}

[[gnu::hot]] std::uint64_t transmit_op::sent() const noexcept {
  return sent_ + (file_->busy() ? file_->moved() : 0);
}

void transmit_op::cancel() {
  if (!busy_) return;
  cancelled_ = true;
  if (send_->in_flight()) ctx_.cancel(*send_);
  // Runs that are past their send result wait only for their notification, which no cancel
  // ends (connection resets the socket so that it comes).
  if (zc_waiting_ != nullptr && zc_waiting_->in_flight()) ctx_.cancel(*zc_waiting_);
  if (file_->busy()) file_->cancel();
}

// Runs steps while they complete inline; returns once one waits in the ring or a file range
// went to the splice_pipe (which completes through file_done), after a yield, or at the end.
[[gnu::hot]] void transmit_op::next() {
  std::uint64_t budget = opts_.transfer_quantum;
  for (;;) {
    if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
    if (chain_.empty()) return finish(runtime::no_error());
    if (!fs::is_memory(chain_.front())) {
      if (!send_file(budget)) return;
      if (file_ec_) return finish(file_ec_);
    } else if (!send_memory(budget)) {
      return;
    }
    if (budget == 0 && !chain_.empty()) return yield();
  }
}

[[gnu::hot]] bool transmit_op::zc_candidate(std::size_t segments, std::uint64_t bytes,
                                            bool& contiguous) const noexcept {
  if (!zc_enabled_ || bytes < opts_.send_zc_min_bytes) return false;
  const auto segs = chain_.segments();
  contiguous = true;
  int index = -1;
  const std::byte* end = nullptr;
  for (std::size_t i = 0; i < segments; ++i) {
    const fs::slice& s = std::get<fs::slice>(segs[i]);
    const int bi = s.buffer_index();
    if (bi < 0) return false;  // unregistered memory is gathered
    if (i > 0 && (bi != index || s.data() != end)) contiguous = false;
    index = bi;
    end = s.data() + s.size();
  }
  return true;
}

// Prepares the next memory run; returns true when it went out inline (the loop continues),
// false when a child was started (or the transmit finished).
[[gnu::hot]] bool transmit_op::send_memory(std::uint64_t& budget) {
  std::size_t n = chain_.iovecs(iov_);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (bytes + iov_[i].iov_len > kMaxIoChunk) {
      if (i == 0) {
        iov_[0].iov_len = kMaxIoChunk;
        bytes = kMaxIoChunk;
        n = 1;
      } else {
        n = i;
      }
      break;
    }
    bytes += iov_[i].iov_len;
  }
  const bool more = more_after_ || bytes < chain_.size();
  const unsigned msg_flags = static_cast<unsigned>(MSG_NOSIGNAL) | (more ? unsigned{MSG_MORE} : 0u);
  msg_ = {};
  msg_.msg_iov = iov_.data();
  msg_.msg_iovlen = n;
  bool contiguous = false;
  asked_ = bytes;
  if (zc_candidate(n, bytes, contiguous) && (contiguous || ctx_.probe().sendmsg_zc)) {
    zc_child& z = idle_zc_child();
    z.fd = fd_;
    z.len = static_cast<std::size_t>(bytes);
    z.msg_flags = msg_flags;
    z.result_seen = false;
    if (contiguous) {
      z.opcode = IORING_OP_SEND_ZC;
      z.buf = iov_[0].iov_base;
      // The arena index is a fixed-buffer index only on rings the pool registered with.
      const fs::slice& first = std::get<fs::slice>(chain_.front());
      z.buf_index = ctx_.uses_io_uring() && first.page()->pool().registered_on(*ctx_.native_ring())
                        ? first.buffer_index()
                        : -1;
    } else {
      z.opcode = IORING_OP_SENDMSG_ZC;
    }
    zc_waiting_ = &z;
    ++zc_pending_;
    return start_child(z, more);
  }
  send_child& c = *send_;
  c.fd = fd_;
  c.msg_flags = msg_flags;
  if (opts_.gather_inline && !gather_by_sqe_) return send_inline(bytes, budget);
  gather_by_sqe_ = false;
  return start_child(c, more);
}

// A memory run goes to the ring: the transmit waits for the child's CQE from here. False, as
// send_memory returns when a child was started.
[[gnu::hot]] bool transmit_op::start_child(runtime::operation& child, bool more) {
  if (more) ++stats_.more_flagged;
  stamp_progress();
  ctx_.start(child);
  return false;
}

transmit_op::zc_child& transmit_op::idle_zc_child() {
  if (zc_idle_.empty()) {
    zc_children_.push_back(std::make_unique<zc_child>(*this));
    return *zc_children_.back();
  }
  zc_child* z = zc_idle_.back();
  zc_idle_.pop_back();
  return *z;
}

// One gather sendmsg(MSG_DONTWAIT) on the loop. A full socket (EAGAIN, or a short send: the
// next call would say EAGAIN) sends the rest through IORING_OP_SENDMSG, which waits for room.
[[gnu::hot]] bool transmit_op::send_inline(std::uint64_t bytes, std::uint64_t& budget) {
  send_child& c = *send_;
  ssize_t r;
  do {
    r = ::sendmsg(fd_, &msg_, static_cast<int>(c.msg_flags) | MSG_DONTWAIT);
    ++stats_.syscalls;
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno != EAGAIN) {
      finish(runtime::sys_error(errno));
      return false;
    }
    gather_by_sqe_ = true;
    return true;  // the loop sends the same bytes again, by SQE
  }
  const auto sent = static_cast<std::uint64_t>(r);
  ++stats_.inline_sends;
  if (c.msg_flags & MSG_MORE) ++stats_.more_flagged;
  if (sent < bytes) gather_by_sqe_ = true;
  accepted(send_path::gather, sent, bytes);
  budget -= std::min(budget, sent);
  return true;
}

// A file range: a resident one within the quantum goes by one sendfile(2) here when
// options::file_range_path chooses sendfile (splice_pipe::sendfile_now: no transfer to set up
// and complete, 612 -> 483 instructions per 4 KiB message in tests/bench/transmit_bench), or
// by two splices through a pipe when it chooses the pipe (splice_pipe::splice_now); anything
// else, and the rest of a short send, goes to a splice_pipe transfer, whose first step runs
// now. Returns true when the range completed inline (the loop continues; an error is in
// file_ec_), false when the pipe waits.
[[gnu::hot]] bool transmit_op::send_file(std::uint64_t& budget) {
  const fs::file_range* r = &std::get<fs::file_range>(chain_.front());
  const bool more = more_after_ || chain_.size() > r->size();
  if (more) ++stats_.more_flagged;
  const bool sendfile = opts_.file_range_path == options::file_path::sendfile ||
                        (opts_.file_range_path == options::file_path::automatic &&
                         r->size() < opts_.sendfile_below_bytes);
  file_ec_ = runtime::no_error();
  bool full = false;
  // Only a range within what is left of this run's quantum: a longer one goes to the pipe,
  // whose sendfile pump yields at the quantum so that transmits on one context interleave.
  if (sendfile && r->size() <= budget) {
    const std::uint64_t size = r->size();
    const std::uint64_t sent = file_->sendfile_now(
        endpoint{r->fd(), static_cast<std::int64_t>(r->offset())}, fd_, size, full);
    if (sent > 0) {
      if (sent < size) ++stats_.short_sends;
      budget -= std::min(budget, sent);
      advance(sent);
      if (sent == size) return true;
      r = &std::get<fs::file_range>(chain_.front());  // the rest of the range
    }
  }
  asked_ = r->size();
  file_inline_ = true;
  file_returned_ = false;
  const endpoint src{r->fd(), static_cast<std::int64_t>(r->offset())};
  // The pipe path likewise: a range within the quantum tries the two splices without a
  // transfer (splice_pipe::splice_now), which falls back to start_now() by itself.
  if (!sendfile && asked_ <= budget) {
    if (file_->splice_now(src, endpoint{fd_, -1}, asked_, more)) {
      file_inline_ = false;
      budget -= std::min(budget, asked_);
      advance(asked_);
      return true;
    }
  } else {
    file_->start_now(src, endpoint{fd_, -1}, asked_, more, sendfile, full);
  }
  file_inline_ = false;
  if (!file_returned_) {
    stamp_progress();  // the pipe waits from here (on_progress stamped any bytes it moved)
    return false;
  }
  budget -= std::min(budget, file_moved_);
  return true;
}

[[gnu::hot]] void transmit_op::child_done(int result) {
  if (result < 0) return send_failed(send_path::gather, result);
  accepted(send_path::gather, static_cast<std::uint64_t>(result), asked_);
  next();
}

// A memory send's error: retried, or (SEND_ZC refused) sent again by gather, or the end.
void transmit_op::send_failed(send_path path, int result) {
  if (cancelled_) return finish(std::make_error_code(std::errc::operation_canceled));
  if (result == -EAGAIN || result == -EINTR || result == -ENOBUFS) return next();
  if (path == send_path::send_zc && (result == -EINVAL || result == -EOPNOTSUPP)) {
    zc_enabled_ = false;  // this socket or kernel refuses SEND_ZC: gather instead
    stats_.zc_disabled = 1;
    return next();
  }
  finish(runtime::sys_error(-result));
}

// A SEND_ZC run's send result: the transmit goes on at once, and what it sent moves to the
// run's `held` chain until its notification.
[[gnu::hot]] void transmit_op::zc_sent(zc_child& z, int result) {
  z.result_seen = true;
  zc_waiting_ = nullptr;
  if (result < 0) return send_failed(send_path::send_zc, result);
  accepted(send_path::send_zc, static_cast<std::uint64_t>(result), asked_, &z);
  next();
}

// A SEND_ZC run's last CQE: its notification (the pages are the kernel's no more), or its
// only CQE when it ended before it was issued (then it carries the send result as well).
[[gnu::hot]] void transmit_op::zc_done(zc_child& z, int result, unsigned flags) {
  --zc_pending_;
  if (flags & IORING_CQE_F_NOTIF) {
    ++stats_.zc_notifs;
    if (static_cast<unsigned>(z.notif_result()) & IORING_NOTIF_USAGE_ZC_COPIED) {
      ++stats_.zc_copied;
      if (zc_enabled_) {  // the kernel copied anyway (loopback): plain sends from now on
        zc_enabled_ = false;
        stats_.zc_disabled = 1;
      }
    }
  }
  const auto held = z.held.segments();
  for (std::size_t i = 0; i < held.size(); ++i) {
    if (i + 1 < held.size() || !z.tail_cut) on_released(held[i]);
  }
  z.held.clear();
  zc_idle_.push_back(&z);
  if (!z.result_seen) {  // no notification follows: nothing of it is the kernel's
    zc_waiting_ = nullptr;
    if (result < 0) return send_failed(send_path::send_zc, result);
    accepted(send_path::send_zc, static_cast<std::uint64_t>(result), asked_);
    return next();
  }
  if (finish_deferred_ && zc_pending_ == 0) {  // a cancel meanwhile still says ECANCELED
    finish_deferred_ = false;
    finish(cancelled_ && !finish_ec_ ? std::make_error_code(std::errc::operation_canceled)
                                     : finish_ec_);
  }
}

[[gnu::hot]] void transmit_op::accepted(send_path path, std::uint64_t sent, std::uint64_t asked,
                                        zc_child* hold) {
  const auto i = static_cast<std::size_t>(path);
  ++stats_.submissions[i];
  stats_.bytes[i] += sent;
  if (sent < asked) ++stats_.short_sends;
  advance(sent, hold);
}

[[gnu::hot]] void transmit_op::file_done(std::error_code ec, std::uint64_t moved) {
  advance(moved);
  if (!ec && moved < asked_) ++stats_.short_sends;
  if (file_inline_) {  // inside send_file(): its caller's loop goes on (or finishes)
    file_returned_ = true;
    file_ec_ = ec;
    file_moved_ = moved;
    return;
  }
  if (ec) return finish(ec);
  next();
}

[[gnu::hot]] void transmit_op::advance(std::uint64_t n, zc_child* hold) {
  if (n == 0) return;
  sent_ += n;
  progress_pending_ = true;  // stamped before the next wait (stamp_progress), not per segment
  if (hold != nullptr) {     // a SEND_ZC run's bytes: kept by the run until its notification
    if (n >= chain_.size()) {
      hold->tail_cut = false;
      hold->held.swap(chain_);  // chain_ gets held's empty storage back
      return;
    }
    std::uint64_t through = 0;  // where the segment holding the cut ends
    for (const fs::segment& seg : chain_.segments()) {
      through += fs::segment_size(seg);
      if (through >= n) break;
    }
    hold->tail_cut = through > n;
    hold->held = chain_.split(n);
    return;
  }
  if (n >= chain_.size()) {  // the rest went out (most messages): drop it in one go
    for (const fs::segment& s : chain_.segments())
      on_released(s);
    chain_.clear();
    return;
  }
  while (n > 0 && !chain_.empty()) {
    const std::uint64_t s = fs::segment_size(chain_.front());
    if (s > n) {
      chain_.consume(n);
      return;
    }
    on_released(chain_.front());
    chain_.consume(s);
    n -= s;
  }
}

[[gnu::hot]] void transmit_op::finish(std::error_code ec) {
  if (zc_pending_ > 0) {  // the last notification completes the transmit
    finish_deferred_ = true;
    finish_ec_ = ec;
    return;
  }
  busy_ = false;
  ++stats_.transmits;
  if (ec) ++stats_.errors;
  on_complete(ec, sent_);
}

}  // namespace pagewire::net
