#pragma once

/// A timer on a pagewire context (IORING_OP_TIMEOUT; an Asio steady_timer on the
/// fallback). async_wait completes with void(std::error_code): empty when the
/// timer expired, ECANCELED (asio::error::operation_aborted's value) when
/// cancelled. Several waits may be pending at once; each is its own SQE and
/// captures the expiry current when it started. The timer must live on the loop
/// thread of its context; destroying it cancels pending waits (their handlers
/// still run). Per-operation timeouts are context::start(op, timeout) and
/// linked_op::timeout (IORING_OP_LINK_TIMEOUT).

#include <chrono>
#include <cstddef>
#include <system_error>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::runtime {

namespace asio = boost::asio;

class timer {
 public:
  using clock = std::chrono::steady_clock;

  explicit timer(context& ctx) noexcept : ctx_(ctx) {}
  timer(const timer&) = delete;
  timer& operator=(const timer&) = delete;
  ~timer() {
    cancel();
    for (wait_base* w = waits_; w; w = w->next_)
      w->timer_ = nullptr;  // they finish alone
  }

  /// Sets the expiry relative to now. Pending waits keep their old expiry.
  void expires_after(std::chrono::nanoseconds d) noexcept { expiry_ = clock::now() + d; }
  void expires_at(clock::time_point t) noexcept { expiry_ = t; }
  clock::time_point expiry() const noexcept { return expiry_; }

  /// Cancels every pending wait; returns how many were pending.
  std::size_t cancel() {
    std::size_t n = 0;
    for (wait_base* w = waits_; w; w = w->next_) {
      ctx_.cancel(*w);
      ++n;
    }
    return n;
  }

  template <class Token>
  auto async_wait(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          auto* w = new wait_op<decltype(handler)>(*this, std::move(handler));
          ctx_.start(*w);
        },
        token);
  }

 private:
  class wait_base : public operation {
   public:
    // The expiry as an absolute CLOCK_MONOTONIC time (steady_clock's epoch): the SQE reaches
    // the kernel at the loop's next step, maybe much later, and a relative timeout would count
    // from there.
    explicit wait_base(timer& t) : ctx_(&t.ctx_), timer_(&t) {
      const auto at =
          std::chrono::duration_cast<std::chrono::nanoseconds>(t.expiry_.time_since_epoch())
              .count();
      const auto ns = at > 0 ? at : 0;
      ts_.tv_sec = ns / 1000000000;
      ts_.tv_nsec = ns % 1000000000;
      next_ = t.waits_;
      if (next_) next_->prev_ = this;
      t.waits_ = this;
    }
    void prepare(io_uring_sqe* sqe) override {
      io_uring_prep_timeout(sqe, &ts_, 0, IORING_TIMEOUT_ABS);
    }

   protected:
    void unlink() noexcept {
      if (!timer_) return;
      if (prev_) {
        prev_->next_ = next_;
      } else {
        timer_->waits_ = next_;
      }
      if (next_) next_->prev_ = prev_;
    }

   protected:
    friend class timer;
    context* ctx_;
    timer* timer_;
    wait_base* next_ = nullptr;
    wait_base* prev_ = nullptr;
    __kernel_timespec ts_{};
  };

  template <class Handler>
  class wait_op final : public wait_base {
   public:
    wait_op(timer& t, Handler&& h) : wait_base(t), handler_(std::move(h)) {}
    void complete(int result, unsigned) override {
      unlink();
      Handler h(std::move(handler_));
      auto ex = asio::get_associated_executor(h, ctx_->get_executor());
      delete this;
      // TIMEOUT completes with -ETIME on expiry.
      const std::error_code ec = result == -ETIME || result >= 0
                                     ? std::error_code()
                                     : std::error_code(-result, std::system_category());
      asio::dispatch(ex, asio::append(std::move(h), ec));
    }

   private:
    Handler handler_;
  };

  friend class wait_base;
  context& ctx_;
  clock::time_point expiry_ = clock::now();
  wait_base* waits_ = nullptr;

 public:
  /// The context this timer runs on.
  context& get_context() noexcept { return ctx_; }
};

}  // namespace pagewire::runtime
