#include <cassert>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

#include <pagewire/net/acceptor.h>
#include <pagewire/net/address.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::net {

int listen_tcp(const char* host, std::uint16_t& port, bool reuse_port, int backlog,
               std::error_code& ec) {
  tcp_address addr;
  if ((ec = tcp_address::parse(host, port, addr))) return -1;
  const int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec.assign(errno, std::system_category());
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if ((reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      ::bind(fd, addr.data(), addr.size) != 0 || ::listen(fd, backlog) != 0) {
    ec.assign(errno, std::system_category());
    ::close(fd);
    return -1;
  }
  addr.size = sizeof addr.storage;
  ::getsockname(fd, addr.data(), &addr.size);
  port = addr.port();
  return fd;
}

struct acceptor::accept_op final : runtime::operation {
  explicit accept_op(acceptor& a) : owner(a) {}
  void prepare(io_uring_sqe* sqe) override {
    if (owner.multishot_) {
      io_uring_prep_multishot_accept(sqe, owner.listen_fd_, nullptr, nullptr,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(sqe, owner.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
  }
  void partial(int result, unsigned) override { owner.on_result(result, false); }
  void complete(int result, unsigned) override { owner.on_result(result, true); }
  acceptor& owner;
};

struct acceptor::pause_op final : runtime::operation {
  explicit pause_op(acceptor& a) : owner(a) {}
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_timeout(sqe, &ts, 0, 0); }
  void complete(int result, unsigned) override { owner.on_backoff_done(result); }
  acceptor& owner;
  __kernel_timespec ts{};
};

acceptor::acceptor(runtime::context& ctx, int listen_fd, const options& opts)
    : ctx_(ctx),
      opts_(opts),
      listen_fd_(listen_fd),
      // The fallback emulates multishot accept; only a kernel without it gets the plain loop.
      multishot_(ctx.probe().multishot_accept),
      accept_(std::make_unique<accept_op>(*this)),
      pause_(std::make_unique<pause_op>(*this)) {
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

acceptor::~acceptor() {
  assert(!accept_->in_flight() && !pause_->in_flight());
  if (reserve_fd_ >= 0) ::close(reserve_fd_);
}

void acceptor::start(handler h) {
  assert(!running_);
  handler_ = std::move(h);
  running_ = true;
  stopping_ = false;
  arm();
}

void acceptor::stop() {
  if (!running_ || stopping_) return;
  stopping_ = true;
  cancel_accept();
  if (pause_->in_flight()) ctx_.cancel(*pause_);
  if (!accept_->in_flight() && !pause_->in_flight()) {
    // Nothing will complete: the final call comes from the loop. Until it runs, no other path
    // may make that call (stop() from the handler of a last completion returns into on_result,
    // whose tail would): the post would then run on an acceptor its owner may have destroyed.
    stop_posted_ = true;
    ctx_.post([this] {
      stop_posted_ = false;
      maybe_stopped();
    });
  }
}

void acceptor::pause_accepting() {
  held_ = true;
  cancel_accept();  // its ECANCELED completion does not re-arm
}

void acceptor::resume_accepting() {
  if (!std::exchange(held_, false)) return;
  if (running_) arm();
}

void acceptor::cancel_accept() {
  if (!accept_->in_flight()) return;
  cancelled_by_us_ = true;
  ctx_.cancel(*accept_);
}

void acceptor::arm() {
  if (stopping_ || held_ || accept_->in_flight() || pause_->in_flight()) return;
  ++stats_.arms;
  ctx_.start(*accept_);
}

void acceptor::on_result(int result, bool last) {
  if (result >= 0) {
    ++stats_.accepted;
    if (stopping_) {
      ::close(result);
    } else {
      handler_({}, result);
    }
  } else if (result == -EMFILE || result == -ENFILE || result == -ENOBUFS || result == -ENOMEM) {
    ++stats_.exhausted;
    shed_one();
    pause_next_ = true;
    if (!last) cancel_accept();  // never keep a multishot that fails in a loop
  } else if (result == -ECANCELED) {
    // stop(), pause_accepting() or the EMFILE path cancelled it, or else the context is
    // shutting down (or its owner cancelled by fd): that ends the acceptor as stop() does,
    // since arming again would outlive the cancel.
    if (!cancelled_by_us_) stopping_ = true;
  } else if (result == -EAGAIN || result == -EINTR || result == -ECONNABORTED) {
    // transient: re-armed below
  } else {
    ++stats_.errors;
    pause_next_ = true;
    if (!stopping_) handler_(std::error_code(-result, std::system_category()), -1);
  }
  if (!last) return;
  cancelled_by_us_ = false;
  if (stopping_) return maybe_stopped();
  if (std::exchange(pause_next_, false)) return back_off();
  arm();
}

void acceptor::shed_one() {
  // Free one descriptor, take the connection that could not be installed, drop it, and take
  // the descriptor back: the backlog shrinks and the peer learns at once.
  if (reserve_fd_ >= 0) {
    ::close(reserve_fd_);
    reserve_fd_ = -1;
  }
  pollfd p{listen_fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN)) {
    const int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c >= 0) {
      ::close(c);
      ++stats_.shed;
    }
  }
  reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void acceptor::back_off() {
  if (pause_->in_flight()) return;
  ++stats_.pauses;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opts_.accept_backoff);
  pause_->ts.tv_sec = ns.count() / 1'000'000'000;
  pause_->ts.tv_nsec = ns.count() % 1'000'000'000;
  ctx_.start(*pause_);
}

void acceptor::on_backoff_done(int result) {
  if (result == -ECANCELED) stopping_ = true;  // only stop() or a shutdown cancels the timer
  if (stopping_) return maybe_stopped();
  arm();
}

void acceptor::maybe_stopped() {
  if (!running_ || stop_posted_ || accept_->in_flight() || pause_->in_flight()) return;
  running_ = false;
  handler h = std::move(handler_);
  handler_ = nullptr;
  h(std::make_error_code(std::errc::operation_canceled), -1);
}

}  // namespace pagewire::net
