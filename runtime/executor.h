#pragma once

/// The Asio executor of a pagewire context: asio::post, asio::dispatch,
/// asio::co_spawn and any_io_executor accept it. execute() runs the function
/// inline when blocking.possibly is required (the default, like io_context's) and
/// the caller is inside this context's loop; otherwise it posts (thread-safe).
/// outstanding_work.tracked keeps run() from returning while the executor lives.
/// Copyable, cheap (a pointer and two flags); the context must outlive it.

#include <utility>

#include <boost/asio/execution.hpp>
#include <boost/asio/execution_context.hpp>

#include <pagewire/runtime/context.h>

namespace pagewire::runtime {

namespace asio = boost::asio;

class executor {
 public:
  explicit executor(context& ctx, bool never = false, bool tracked = false) noexcept
      : ctx_(&ctx), never_(never), tracked_(tracked) {
    if (tracked_) ctx_->work_started();
  }
  executor(const executor& o) noexcept : executor(*o.ctx_, o.never_, o.tracked_) {}
  executor(executor&& o) noexcept : ctx_(o.ctx_), never_(o.never_), tracked_(o.tracked_) {
    o.tracked_ = false;
  }
  executor& operator=(const executor& o) noexcept {
    executor tmp(o);
    swap(tmp);
    return *this;
  }
  executor& operator=(executor&& o) noexcept {
    executor tmp(std::move(o));
    swap(tmp);
    return *this;
  }
  ~executor() {
    if (tracked_) ctx_->work_finished();
  }

  context& get_context() const noexcept { return *ctx_; }
  bool running_in_this_thread() const noexcept { return ctx_->running_in_this_thread(); }

  template <class F>
  void execute(F&& f) const {
    if (!never_ && ctx_->running_in_this_thread()) {
      std::forward<F>(f)();
      return;
    }
    ctx_->post(std::forward<F>(f));
  }

  // ---- properties --------------------------------------------------------------
  asio::execution_context& query(asio::execution::context_t) const noexcept {
    return ctx_->asio_context();
  }
  asio::execution::blocking_t query(asio::execution::blocking_t) const noexcept {
    return never_ ? asio::execution::blocking_t(asio::execution::blocking.never)
                  : asio::execution::blocking_t(asio::execution::blocking.possibly);
  }
  asio::execution::outstanding_work_t query(asio::execution::outstanding_work_t) const noexcept {
    return tracked_
               ? asio::execution::outstanding_work_t(asio::execution::outstanding_work.tracked)
               : asio::execution::outstanding_work_t(asio::execution::outstanding_work.untracked);
  }
  static constexpr asio::execution::relationship_t query(asio::execution::relationship_t) noexcept {
    return asio::execution::relationship.fork;
  }

  executor require(asio::execution::blocking_t::never_t) const noexcept {
    return executor(*ctx_, true, tracked_);
  }
  executor require(asio::execution::blocking_t::possibly_t) const noexcept {
    return executor(*ctx_, false, tracked_);
  }
  executor require(asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return executor(*ctx_, never_, true);
  }
  executor require(asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return executor(*ctx_, never_, false);
  }

  friend bool operator==(const executor& a, const executor& b) noexcept {
    return a.ctx_ == b.ctx_ && a.never_ == b.never_ && a.tracked_ == b.tracked_;
  }
  friend bool operator!=(const executor& a, const executor& b) noexcept { return !(a == b); }

 private:
  void swap(executor& o) noexcept {
    std::swap(ctx_, o.ctx_);
    std::swap(never_, o.never_);
    std::swap(tracked_, o.tracked_);
  }

  context* ctx_;
  bool never_;
  bool tracked_;
};

inline executor context::get_executor() noexcept {
  return executor(*this);
}

}  // namespace pagewire::runtime
