#include <algorithm>
#include <cassert>
#include <cerrno>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pagewire/net/connection.h>
#include <pagewire/runtime/coarse_clock.h>
#include <pagewire/runtime/timer.h>

namespace pagewire::net {
namespace {

using clock = std::chrono::steady_clock;

std::error_code errno_code(int err) {
  return {err, std::system_category()};
}

// Resets a TCP connection and keeps the descriptor: connect(2) to AF_UNSPEC disconnects the
// socket (tcp_disconnect: a RST, the send queue dropped). Other sockets refuse it (EINVAL), and
// the shutdown that follows ends them as before: the result does not matter.
void reset_tcp(int fd) {
  sockaddr unspec{};
  unspec.sa_family = AF_UNSPEC;
  (void)::connect(fd, &unspec, sizeof unspec);
}

}  // namespace

/// The receive: multishot with buffer selection, or one plain recv into a heap block.
struct connection::recv_op final : runtime::operation {
  explicit recv_op(connection& c) : conn(c) {}
  void prepare(io_uring_sqe* sqe) override {
    if (conn.ring_) {
      io_uring_prep_recv_multishot(sqe, conn.fd_, nullptr, 0, 0);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = conn.ring_->group();
    } else {
      // for_overwrite: the kernel fills it; zeroing 64 KiB per receive cost ~20% of a TLS
      // receiver's instructions (callgrind, filters_bench).
      if (!block) block = std::make_unique_for_overwrite<std::byte[]>(conn.opts_.recv_buffer_size);
      io_uring_prep_recv(sqe, conn.fd_, block.get(), conn.opts_.recv_buffer_size, 0);
    }
  }
  void partial(int result, unsigned flags) override { conn.on_recv_cqe(result, flags, false); }
  void complete(int result, unsigned flags) override { conn.on_recv_cqe(result, flags, true); }
  connection& conn;
  std::unique_ptr<std::byte[]> block;
};

struct connection::sender final : transmit_op {
  sender(connection& c, runtime::context& ctx, const options& o, pipe_pool& p)
      : transmit_op(ctx, o, p), conn(c) {}
  void on_complete(std::error_code ec, std::uint64_t bytes) override {
    conn.on_send_done(ec, bytes);
  }
  connection& conn;
};

struct connection::watchdog {
  explicit watchdog(runtime::context& ctx) : t(ctx) {}
  runtime::timer t;
};

connection::connection(runtime::context& ctx, int fd, const options& opts, pipe_pool& pipes,
                       recv_buffer_ring* ring)
    : ctx_(ctx),
      opts_(opts),
      ring_(ctx.uses_io_uring() && ctx.probe().multishot_recv ? ring : nullptr),
      fd_(fd),
      recv_(std::make_unique<recv_op>(*this)),
      sender_(std::make_unique<sender>(*this, ctx, opts, pipes)),
      watchdog_(std::make_unique<watchdog>(ctx)) {
  queue_.resize(ring_ ? opts.recv_buffers : 1);
  deliver_.self = this;
  deliver_.fn = [](runtime::task_node* t, bool invoke) {
    if (invoke) static_cast<deliver_node*>(t)->self->deliver_queued();
  };
  const int fl = ::fcntl(fd_, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd_, F_SETFL, fl | O_NONBLOCK);
  if (opts.tcp_nodelay) {  // fails (ENOTSUP/ENOPROTOOPT) on non-TCP sockets: nothing to do
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (opts.notsent_lowat != 0) {  // the same: a non-TCP socket has no send queue to bound
    const int lowat = static_cast<int>(opts.notsent_lowat);
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof lowat);
  }
}

connection::~connection() {
  assert(!recv_->in_flight() && !sender_->busy() && !watchdog_pending_ && !delivery_pending_);
  if (ring_) ring_->remove_waiter(*this);
  queue_.clear();  // views go back to the ring
  if (fd_ >= 0) ::close(fd_);
}

transmit_stats connection::send_stats() const noexcept {
  return sender_->stats();
}

// ---- receive -------------------------------------------------------------------------------

void connection::start_receive(detail::pending_handler<std::error_code, received>* h) {
  assert(recv_handler_ == nullptr);
  if (closing_) {
    ctx_.post([h] { h->invoke(std::make_error_code(std::errc::operation_canceled), received{}); });
    return;
  }
  // Something already here: complete on the loop (a task-queue hop), never inside the
  // initiating call.
  if (queue_size_ > 0 || recv_error_ || recv_eof_) {
    recv_handler_ = h;
    // deliver_ may be queued already: the receive it was queued for ended (its deadline
    // passed) and this one was started from its handler. Queued twice, the node would cut
    // the loop's task queue short.
    if (!std::exchange(delivery_pending_, true)) ctx_.defer(deliver_);
    return;
  }
  recv_handler_ = h;
  recv_started_ = runtime::coarse_now();
  if (!recv_->in_flight()) arm_receive();
  arm_watchdog();
}

void connection::arm_receive() {
  if (closing_ || recv_->in_flight()) return;
  if (ring_ && ring_->available() == 0) {  // ENOBUFS would follow at once: wait for a buffer
    ring_->add_waiter(*this);
    return;
  }
  ++stats_.recv_arms;
  ctx_.start(*recv_);
}

void connection::deliver_queued() {
  delivery_pending_ = false;
  if (recv_handler_ != nullptr && !closing_) {  // else a timeout or the close took the handler
    received r;
    std::error_code ec;
    if (queue_size_ > 0) {
      r = queue_pop();
    } else if (recv_error_) {
      ec = std::exchange(recv_error_, {});
    }
    deliver_receive(ec, std::move(r));
  }
  maybe_finish_close();
}

void connection::queue_push(received r) {
  if (queue_size_ == queue_.size()) {  // full (never with a ring): grow, keeping the order
    std::vector<received> bigger(queue_.size() * 2);
    for (std::size_t i = 0; i < queue_size_; ++i)
      bigger[i] = std::move(queue_[(queue_head_ + i) % queue_.size()]);
    queue_ = std::move(bigger);
    queue_head_ = 0;
  }
  queue_[(queue_head_ + queue_size_) % queue_.size()] = std::move(r);
  ++queue_size_;
}

received connection::queue_pop() {
  received r = std::move(queue_[queue_head_]);
  queue_head_ = (queue_head_ + 1) % queue_.size();
  --queue_size_;
  return r;
}

bool connection::buffers_available() {
  // Not waiting any more: the receive ended (a timeout), or one is in flight already.
  if (!recv_handler_ || closing_ || recv_->in_flight()) return false;
  arm_receive();
  return recv_->in_flight();
}

void connection::on_recv_cqe(int result, unsigned flags, bool last) {
  if (result > 0) {
    received r =
        ring_ ? ring_->take(static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT),
                            static_cast<std::size_t>(result))
              : received::from_heap(std::move(recv_->block), static_cast<std::size_t>(result));
    ++stats_.receives;
    stats_.received_bytes += static_cast<std::uint64_t>(result);
    if (closing_) {
      // dropped: the buffer goes back now
    } else if (recv_handler_ && !delivery_pending_) {
      deliver_receive({}, std::move(r));
    } else {
      queue_push(std::move(r));
    }
  } else if (result == 0) {
    recv_eof_ = true;
    if (recv_handler_ && !closing_ && !delivery_pending_) deliver_receive({}, received{});
  } else if (result == -ENOBUFS) {
    ++stats_.enobufs;
    // Re-armed now if buffers came back meanwhile, else when one does (or at the next
    // receive): arm_receive() decides.
    if (last && recv_handler_ && !closing_) arm_receive();
  } else if (!closing_) {
    if (recv_handler_ && !delivery_pending_) {
      deliver_receive(errno_code(-result), received{});
    } else {
      recv_error_ = errno_code(-result);
    }
  }
  if (!last) return;
  // The multishot ended (or the plain recv finished): re-arm while someone waits.
  if (recv_handler_ && !recv_eof_ && result != -ENOBUFS && !closing_) arm_receive();
  maybe_finish_close();
}

void connection::deliver_receive(std::error_code ec, received r) {
  auto* h = std::exchange(recv_handler_, nullptr);
  h->invoke(ec, std::move(r));
}

// ---- send ----------------------------------------------------------------------------------

void connection::start_send(fs::chain&& m, send_flags flags,
                            detail::pending_handler<std::error_code, std::uint64_t>* h) {
  assert(send_handler_ == nullptr);
  if (closing_) {
    m.clear();  // not sent: dropped here, as a started transmit would have taken it
    ctx_.post([h] { h->invoke(std::make_error_code(std::errc::operation_canceled), 0); });
    return;
  }
  send_handler_ = h;
  send_timed_out_ = false;
  sender_->start(fd_, std::move(m), flags);
  arm_watchdog();
}

void connection::on_send_done(std::error_code ec, std::uint64_t bytes) {
  if (send_timed_out_) ec = std::make_error_code(std::errc::timed_out);
  send_timed_out_ = false;
  auto* h = std::exchange(send_handler_, nullptr);
  if (h) h->invoke(ec, bytes);
  maybe_finish_close();
}

// ---- timeouts ------------------------------------------------------------------------------

std::chrono::milliseconds connection::receive_timeout() const noexcept {
  switch (phase_) {
    case phase::header:
      return opts_.header_timeout;
    case phase::idle:
      return opts_.idle_timeout;
    case phase::linger:
      return opts_.linger_timeout;
    case phase::body:
      break;
  }
  return std::chrono::milliseconds{0};
}

void connection::set_receive_deadline(clock::time_point when) {
  recv_deadline_ = when;
  if (recv_handler_) arm_watchdog();
}

clock::time_point connection::receive_due() const noexcept {
  const auto t = receive_timeout();
  // A receive whose block is queued for delivery (deliver_) has its first byte: only the
  // deadline applies to it. (recv_started_ is the previous receive's start then.)
  if (t.count() == 0 || delivery_pending_) return recv_deadline_;
  return std::min(recv_deadline_, recv_started_ + t);
}

clock::time_point connection::next_deadline() const noexcept {
  auto when = clock::time_point::max();
  if (recv_handler_) when = receive_due();
  // A send that timed out is being cancelled: its deadline has passed and fired. (A SEND_ZC
  // ends only at its notification, which a peer that does not read holds back.)
  if (sender_->busy() && opts_.send_timeout.count() > 0 && !send_timed_out_) {
    when = std::min(when, sender_->last_progress() + opts_.send_timeout);
  }
  return when;
}

void connection::arm_watchdog() {
  if (closing_) return;
  const auto when = next_deadline();
  if (when == clock::time_point::max()) return;
  if (watchdog_pending_) {
    if (when < watchdog_expiry_) watchdog_->t.cancel();  // its completion re-arms earlier
    return;
  }
  watchdog_pending_ = true;
  watchdog_expiry_ = when;
  watchdog_->t.expires_at(when);
  watchdog_->t.async_wait([this](std::error_code) {
    watchdog_pending_ = false;
    on_watchdog();
  });
}

void connection::on_watchdog() {
  if (closing_) return maybe_finish_close();
  const auto now = clock::now();
  if (recv_handler_ && now >= receive_due()) {
    if (!lingering_) ++stats_.timeouts;  // a lingering close ends so by design
    deliver_receive(std::make_error_code(std::errc::timed_out), received{});
  }
  if (sender_->busy() && opts_.send_timeout.count() > 0 && !send_timed_out_ &&
      now >= sender_->last_progress() + opts_.send_timeout) {
    ++stats_.timeouts;
    send_timed_out_ = true;
    sender_->cancel();
  }
  arm_watchdog();
}

// ---- close ---------------------------------------------------------------------------------

void connection::start_close(detail::pending_handler<std::error_code>* h) {
  if (closing_ || lingering_) {
    // Cut a lingering close short: its receive (in flight, or waiting for a ring buffer)
    // is due now, and its handler closes.
    if (lingering_) set_receive_deadline(clock::time_point::min());
    ctx_.post([h] { h->invoke(std::make_error_code(std::errc::operation_in_progress)); });
    return;
  }
  closing_ = true;
  close_handler_ = h;
  // A send still in flight is abandoned, its message cut short: reset instead of queuing a FIN
  // behind bytes the peer may never take (it stopped reading, say: the send timed out). Those
  // bytes hold the send's pages, and a SEND_ZC ends only when the kernel lets go of them.
  if (sender_->busy()) reset_tcp(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  ctx_.cancel_fd(fd_);
  sender_->cancel();
  if (recv_->in_flight()) ctx_.cancel(*recv_);
  if (watchdog_pending_) watchdog_->t.cancel();
  if (ring_) ring_->remove_waiter(*this);
  for (std::size_t i = 0; i < queue_size_; ++i)  // the views go back to the ring now
    queue_[(queue_head_ + i) % queue_.size()] = received{};
  queue_head_ = queue_size_ = 0;
  maybe_finish_close();
}

bool connection::input_waiting() const noexcept {
  if (queue_size_ > 0) return true;
  int unread = 0;
  return ::ioctl(fd_, FIONREAD, &unread) == 0 && unread > 0;
}

void connection::start_lingering_close(linger_when when,
                                       detail::pending_handler<std::error_code>* h) {
  if (closing_ || lingering_ || recv_handler_ != nullptr ||
      (when == linger_when::input_waiting && !input_waiting())) {
    start_close(h);
    return;
  }
  ++stats_.lingered;
  lingering_ = true;
  linger_handler_ = h;
  phase_ = phase::linger;  // linger_timeout bounds each quiet gap, the deadline the whole
  recv_deadline_ = runtime::coarse_now() + opts_.linger_time;
  ::shutdown(fd_, SHUT_WR);  // a FIN after every byte already queued
  linger_receive();
}

void connection::linger_receive() {
  async_receive([this](std::error_code ec, received r) {
    if (!ec && !r.empty()) {
      stats_.lingered_bytes += r.size();
      linger_receive();  // r goes back to the buffer ring here
      return;
    }
    lingering_ = false;
    start_close(std::exchange(linger_handler_, nullptr));
  });
}

void connection::maybe_finish_close() {
  if (!closing_ || closed_) return;
  if (recv_->in_flight() || sender_->busy() || watchdog_pending_ || delivery_pending_) return;
  closed_ = true;
  ::close(fd_);
  fd_ = -1;
  // One task, so a pending receive's ECANCELED always runs before the close handler.
  auto* rh = std::exchange(recv_handler_, nullptr);
  auto* h = std::exchange(close_handler_, nullptr);
  ctx_.post([rh, h] {
    if (rh) rh->invoke(std::make_error_code(std::errc::operation_canceled), received{});
    h->invoke(std::error_code{});
  });
}

}  // namespace pagewire::net
