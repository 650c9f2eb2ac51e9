#pragma once

/// Asio initiating functions over single-SQE operations. Every call takes a
/// CompletionToken (callback, asio::use_awaitable, asio::use_future,
/// asio::deferred, ...) through asio::async_initiate; the completion signature
/// is void(std::error_code, int): the error (errno category, empty on success) and
/// the kernel's non-negative result (bytes, fd; 0 on error). With use_awaitable the
/// co_await yields std::tuple<std::error_code, int> (no exceptions on the I/O
/// path).
///
/// The operation object is allocated per call (plain new) and freed before the
/// handler runs. The handler runs through its associated executor (inline when
/// that is this context's executor and we are on its loop). A connected
/// cancellation slot cancels the SQE (ASYNC_CANCEL); the handler then gets
/// ECANCELED (== asio::error::operation_aborted's value). Loop thread only.

#include <chrono>
#include <system_error>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_type.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/prefer.hpp>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::runtime {

namespace asio = boost::asio;

namespace detail {

inline std::error_code to_error(int result) noexcept {
  return result < 0 ? std::error_code(-result, std::system_category()) : std::error_code();
}

/// One SQE filled by `Prep(io_uring_sqe*)`, completing `Handler(ec, int)`.
template <class Prep, class Handler>
class sqe_op final : public operation {
 public:
  sqe_op(context& ctx, Prep prep, Handler&& h)
      : ctx_(ctx),
        prep_(std::move(prep)),
        handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) {
      slot.assign([this](asio::cancellation_type) { ctx_.cancel(*this); });
    }
  }

  void prepare(io_uring_sqe* sqe) override { prep_(sqe); }

  void complete(int result, unsigned) override {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    Handler h(std::move(handler_));
    auto work = std::move(work_);
    delete this;
    auto ex = asio::get_associated_executor(h, work);
    asio::dispatch(ex, asio::append(std::move(h), to_error(result), result < 0 ? 0 : result));
  }

 private:
  context& ctx_;
  Prep prep_;
  Handler handler_;
  std::decay_t<decltype(asio::prefer(std::declval<asio::associated_executor_t<Handler, executor>>(),
                                     asio::execution::outstanding_work.tracked))>
      work_;
};

}  // namespace detail

/// Submits one SQE that `prep` fills (any opcode: read, send, splice, ...).
/// `prep` is called once on the loop thread with a zeroed SQE; it must not set
/// user_data. Optional `timeout` > 0 links an IORING_OP_LINK_TIMEOUT.
template <class Prep, class Token>
auto async_sqe(context& ctx, Prep prep, Token&& token,
               std::chrono::nanoseconds timeout = std::chrono::nanoseconds{0}) {
  return asio::async_initiate<Token, void(std::error_code, int)>(
      [](auto handler, context* c, Prep p, std::chrono::nanoseconds t) {
        using H = decltype(handler);
        auto* op = new detail::sqe_op<Prep, H>(*c, std::move(p), std::move(handler));
        c->start(*op, t);
      },
      token, &ctx, std::move(prep), timeout);
}

/// A NOP round trip through the ring (or the fallback).
template <class Token>
auto async_nop(context& ctx, Token&& token) {
  return async_sqe(
      ctx, [](io_uring_sqe* sqe) { io_uring_prep_nop(sqe); }, std::forward<Token>(token));
}

}  // namespace pagewire::runtime
