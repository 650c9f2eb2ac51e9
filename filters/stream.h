#pragma once

/// stream: the one interface every layer of a connection offers, whatever is under it.
/// An application holds the top `stream` and calls write(chain, token), read(token) and
/// shutdown(token); it cannot tell whether a gzip or TLS layer, or only the plain
/// transport, is underneath. Layers stack: each owns the stream below it.
///
/// Writes and completion stacking (the seeds' compound events, point a): one
/// `write_request` (a runtime::operation) travels down the whole stack. Each layer
/// replaces `data` with what it produced (compressed bytes, TLS records) and pushes its
/// completion action on the request before handing it to the layer below. The transport
/// at the bottom sends `data`, stores the wire bytes in `bytes` and completes the request
/// through the ring (a NOP, so actions run on the loop as for any operation). The context
/// then runs the actions LIFO: TLS maps ciphertext bytes to the plaintext bytes they
/// carried, gzip maps its output to the input it consumed, and only after the last one
/// does the application's handler run, with its own byte count. A layer that needs several
/// trips below for one write (bounded memory) returns action_result::keep and sends the
/// next piece with the same request.
///
/// Reads go the other way, as a callback chain: a layer asks the one below for bytes
/// (start_read), decodes them, and answers its caller with a chain of plaintext slices.
///
/// Rules: one write and one read may be outstanding at a time per stream (full duplex),
/// plus shutdown after the last write. Everything runs on the loop thread of `context()`.
/// Errors are std::error_code: errno (system_category) or filters::errc.
/// Lifetime: a stream must outlive its outstanding operations; cancel() makes them
/// complete (ECANCELED) soon, after which the stream may be destroyed.

#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <pagewire/fs/chain.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::filters {

namespace asio = boost::asio;

/// How a write ends.
enum class write_flags : std::uint8_t {
  end_of_message = 0,  ///< the message ends here: content filters flush (gzip trailer), no cork
  more = 1,            ///< more of the same message follows: filters may hold output back
};

/// One write travelling down a stack; see the file comment. Owned by whoever started it
/// (the token adapter for application writes, a layer for its own control records).
class write_request : public runtime::operation {
 public:
  /// What the layer being called must send. Each layer moves it out and puts its output in.
  fs::chain data;
  /// More of the same message follows (the transport sends with MSG_MORE).
  bool more = false;
  /// After the transport: wire bytes sent. Each layer's action rewrites it to its own
  /// input bytes, so complete() sees the application's bytes.
  std::uint64_t bytes = 0;
  /// The first error of any layer (empty on success).
  std::error_code ec;

  /// The request's own SQE is a NOP: the transport submits it when its send is done.
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_nop(sqe); }

  /// Readies a completed request for the next write: `data` empty, `more`, `bytes` and `ec`
  /// cleared. `data` keeps its storage; the layers hand theirs back through it (a layer swaps
  /// its input chain with `data`, a transport gets its transmit's previous storage), so a
  /// caller that reuses one request and swaps its message into `data` allocates no chain
  /// storage per write once the chains have grown.
  void reset() noexcept {
    data.clear();
    more = false;
    bytes = 0;
    ec = {};
  }

  /// Called by the transport at the bottom when it is done with `data`.
  void finish(runtime::context& ctx, std::error_code e, std::uint64_t wire_bytes) {
    if (e && !ec) ec = e;
    bytes = wire_bytes;
    ctx.start(*this);
  }

 protected:
  /// The error to report, merging a failed NOP (context shutdown) into ec.
  std::error_code final_error(int result) const {
    if (ec) return ec;
    return result < 0 ? std::error_code(-result, std::system_category()) : std::error_code();
  }
};

/// A write_request that calls a function when done (for layers' own records).
class callback_write_request final : public write_request {
 public:
  using callback = void (*)(void* arg, std::error_code ec, std::uint64_t bytes);
  callback_write_request(callback fn, void* arg) noexcept : fn_(fn), arg_(arg) {}
  void complete(int result, unsigned) override { fn_(arg_, final_error(result), bytes); }

 private:
  callback fn_;
  void* arg_;
};

/// Receives one read's result: a chain of bytes (non-empty) or an error (errc::eof at the
/// clean end). `fn` runs exactly once, on the loop thread, possibly inside start_read.
/// `data` is the callee's to move (or swap) out; what it leaves there belongs to the layer
/// again once fn returns, which reuses the chain's storage for its next read. Valid until fn
/// returns or the callee starts another read on the stream, whichever comes first.
struct read_waiter {
  void (*fn)(read_waiter* self, std::error_code ec, fs::chain&& data) = nullptr;
};

/// Receives a shutdown's result.
struct done_waiter {
  void (*fn)(done_waiter* self, std::error_code ec) = nullptr;
};

namespace detail {

template <class Handler>
using tracked_executor_t = std::decay_t<decltype(asio::prefer(
    std::declval<asio::associated_executor_t<Handler, runtime::executor>>(),
    asio::execution::outstanding_work.tracked))>;

template <class Handler>
class write_op final : public write_request {
 public:
  write_op(Handler&& h, runtime::context& ctx)
      : handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)) {}
  void complete(int result, unsigned) override {
    const std::error_code e = final_error(result);
    const std::uint64_t n = bytes;
    Handler h(std::move(handler_));
    auto work = std::move(work_);
    delete this;
    auto ex = asio::get_associated_executor(h, work);
    asio::dispatch(ex, asio::append(std::move(h), e, n));
  }

 private:
  Handler handler_;
  tracked_executor_t<Handler> work_;
};

/// Read and shutdown adapters: if the layer answers inside the initiating call, the
/// handler is posted (an Asio handler never runs inside its initiating function).
struct initiation_guard {
  void* op = nullptr;  ///< the adapter while initiating; cleared when it completes inline
};

template <class Handler, class Waiter, class... Args>
class waiter_op final : public Waiter {
 public:
  waiter_op(Handler&& h, runtime::context& ctx, initiation_guard& g)
      : handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)),
        guard_(&g) {
    this->fn = &waiter_op::done;
    g.op = this;
  }
  /// Called after the initiating call returned, while the adapter still waits.
  static void release_guard(initiation_guard& g) {
    if (g.op) static_cast<waiter_op*>(g.op)->guard_ = nullptr;
  }

 private:
  static void done(Waiter* w, Args... args) {
    auto* self = static_cast<waiter_op*>(w);
    const bool inline_call = self->guard_ != nullptr;
    if (inline_call) self->guard_->op = nullptr;
    Handler h(std::move(self->handler_));
    auto work = std::move(self->work_);
    delete self;
    auto ex = asio::get_associated_executor(h, work);
    if (inline_call) {
      asio::post(ex, asio::append(std::move(h), std::move(args)...));
    } else {
      asio::dispatch(ex, asio::append(std::move(h), std::move(args)...));
    }
  }
  Handler handler_;
  tracked_executor_t<Handler> work_;
  initiation_guard* guard_;
};

}  // namespace detail

class stream {
 public:
  explicit stream(runtime::context& ctx) noexcept : ctx_(ctx) {}
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  virtual ~stream() = default;

  runtime::context& context() const noexcept { return ctx_; }

  // ---- the cores every layer implements (loop thread) ------------------------------
  /// Sends r.data (see write_request). Exactly one completion of `r` follows.
  virtual void start_write(write_request& r) = 0;
  /// Reads the next bytes; `w.fn` runs once.
  virtual void start_read(read_waiter& w) = 0;
  /// Ends the sending side (gzip trailer if open, TLS close_notify, FIN); `w.fn` runs once.
  virtual void start_shutdown(done_waiter& w) = 0;
  /// Makes every outstanding operation of this stack complete soon (ECANCELED).
  virtual void cancel() = 0;
  /// The stack from here down, e.g. "gzip>tls(userspace)>plain", for logs and stats.
  virtual std::string describe() const = 0;

  // ---- the application's interface (any CompletionToken) ---------------------------
  /// Writes `c` as the end of a message: void(std::error_code, std::uint64_t bytes), the
  /// bytes of `c` accepted (all of them on success).
  template <class Token>
  auto write(fs::chain c, Token&& token) {
    return write(std::move(c), write_flags::end_of_message, std::forward<Token>(token));
  }
  template <class Token>
  auto write(fs::chain c, write_flags f, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, std::uint64_t)>(
        [this](auto handler, fs::chain c, write_flags f) {
          using H = std::decay_t<decltype(handler)>;
          auto* op = new detail::write_op<H>(std::move(handler), ctx_);
          op->data = std::move(c);
          op->more = f == write_flags::more;
          start_write(*op);
        },
        token, std::move(c), f);
  }
  /// Reads the next bytes: void(std::error_code, fs::chain); errc::eof at the clean end.
  template <class Token>
  auto read(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, fs::chain)>(
        [this](auto handler) {
          using Op = detail::waiter_op<std::decay_t<decltype(handler)>, read_waiter,
                                       std::error_code, fs::chain&&>;
          detail::initiation_guard g;
          start_read(*new Op(std::move(handler), ctx_, g));
          Op::release_guard(g);
        },
        token);
  }
  /// Ends the sending side: void(std::error_code).
  template <class Token>
  auto shutdown(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          using Op =
              detail::waiter_op<std::decay_t<decltype(handler)>, done_waiter, std::error_code>;
          detail::initiation_guard g;
          start_shutdown(*new Op(std::move(handler), ctx_, g));
          Op::release_guard(g);
        },
        token);
  }

 private:
  runtime::context& ctx_;
};

/// A stream with a stream below it, which it owns.
class layer : public stream {
 public:
  stream& lower() noexcept { return *lower_; }
  void cancel() override { lower_->cancel(); }

 protected:
  explicit layer(std::unique_ptr<stream> lower) noexcept
      : stream(lower->context()), lower_(std::move(lower)) {}
  std::unique_ptr<stream> lower_;
};

}  // namespace pagewire::filters
