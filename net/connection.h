#pragma once

/// connection: one accepted (or connected) TCP socket on one context: receives, sends, timeouts
/// and an orderly close.
///
/// Receive: multishot IORING_OP_RECV selecting buffers from a recv_buffer_ring (armed at the
/// first async_receive, re-armed when the kernel ends it: ENOBUFS waits for a buffer to come
/// back, any other end re-arms at the next async_receive), or a plain IORING_OP_RECV into a heap
/// block where the context has no buffer rings (fallback backend, old kernels) or no ring was
/// given. Bytes come up as `received` views (no copy); the consumer releases them.
/// Blocks that arrive while nobody waits queue here (bounded by the ring's buffers; the queue's
/// storage is reserved up front) and are handed to the next receive through the loop's task
/// queue: neither path allocates.
///
/// Timeouts (options): a receive in phase::header must see a byte within header_timeout, one in
/// phase::idle within idle_timeout (keep-alive); a send fails when the socket accepts no byte
/// for send_timeout. A timed-out operation completes with ETIMEDOUT; the caller then closes.
///
/// Close: async_close shuts the socket down, cancels every operation on its fd
/// (IORING_ASYNC_CANCEL_FD), waits until each one (receive, transmit, polls, timers) has
/// completed, and only then closes the descriptor: no operation outlives its socket.
/// With a send still in flight (cancelled: its message is cut short), async_close resets a TCP
/// connection instead (a RST; what the peer had not acknowledged is dropped), so a peer that
/// stopped reading cannot hold the close, or a SEND_ZC's pages, for as long as it likes.
/// async_lingering_close first lets the peer take every byte sent when it is still sending
/// (see there): the end of a response that must not be cut by a reset.
///
/// Ownership: the connection owns the descriptor from construction. The context, options,
/// pipe_pool and recv_buffer_ring outlive it. Destroy it only after async_close completed (or
/// when nothing was ever started; the destructor then closes the fd). Threading: the loop thread
/// of its context. Errors: std::error_code (system_category); end of stream is a receive that
/// completes without error and with an empty `received`.
///
/// Signals: sends pass MSG_NOSIGNAL, but splice(2) and sendfile(2) have no such flag, so moving
/// a file range to a socket the peer has reset raises SIGPIPE, whose default action ends the
/// process. A program that sends file ranges ignores SIGPIPE (signal(SIGPIPE, SIG_IGN), as
/// nginx does); the send then fails with EPIPE or ECONNRESET.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/prefer.hpp>

#include <pagewire/fs/chain.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/recv_buffer_ring.h>
#include <pagewire/net/transmit.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::net {

namespace asio = boost::asio;

/// Which receive timeout applies.
enum class phase : std::uint8_t {
  header,  ///< waiting for (the rest of) a request head: options::header_timeout
  idle,    ///< keep-alive between requests: options::idle_timeout
  body,    ///< streaming a body: no receive timeout (send/progress rules apply)
  linger,  ///< a lingering close dropping the peer's input: options::linger_timeout
};

/// When connection::async_lingering_close lingers.
enum class linger_when : std::uint8_t {
  /// Only when the peer's input is waiting now: the peer said it is done (its last request asked
  /// to close) or nothing was owed to it, so only bytes already sent can still be coming.
  input_waiting,
  /// Whatever is waiting now: the peer may still be sending, because we close before it knows
  /// (a request refused before all of it arrived, a keep-alive request answered with a close).
  always,
};

namespace detail {

/// A type-erased completion handler, invoked through its associated executor.
template <class... Args>
class pending_handler {
 public:
  virtual void invoke(Args... args) = 0;

 protected:
  ~pending_handler() = default;
};

/// Storage one connection reuses for the handler of its receive (or its send): successive
/// operations of one kind never overlap, so a steady receive/send loop allocates nothing.
/// Handlers larger than kSize (or over-aligned) go to their associated allocator instead.
struct handler_slot {
  static constexpr std::size_t kSize = 256;
  alignas(std::max_align_t) unsigned char bytes[kSize];
  bool used = false;
};

template <class Handler, class... Args>
class handler_node final : public pending_handler<Args...> {
 public:
  handler_node(runtime::context& ctx, Handler&& h, handler_slot* slot)
      : handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)),
        slot_(slot) {}
  void invoke(Args... args) override {
    Handler h(std::move(handler_));
    auto work = std::move(work_);
    release(h);
    auto ex = asio::get_associated_executor(h, work);
    asio::dispatch(ex, [h = std::move(h), ... a = std::move(args)]() mutable {
      std::move(h)(std::move(a)...);
    });
  }

  using allocator_type = typename std::allocator_traits<
      asio::associated_allocator_t<Handler>>::template rebind_alloc<handler_node>;
  // NOLINTNEXTLINE(misc-redundant-expression): clang-tidy 14 misreads the dependent sizeof
  static constexpr bool fits_slot = sizeof(handler_node) <= handler_slot::kSize &&
                                    alignof(handler_node) <= alignof(std::max_align_t);

 private:
  // Ends this node's life: back into the slot, or to the handler's allocator.
  void release(const Handler& h) {
    if (handler_slot* s = slot_) {
      this->~handler_node();
      s->used = false;
      return;
    }
    allocator_type a(asio::get_associated_allocator(h));
    this->~handler_node();
    std::allocator_traits<allocator_type>::deallocate(a, this, 1);
  }

  Handler handler_;
  std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler, runtime::executor>>(),
      asio::execution::outstanding_work.tracked))>
      work_;
  handler_slot* slot_;
};

/// The node for `h`: in `slot` when it is free and the node fits, else from the handler's
/// associated allocator (std::allocator unless the handler names one).
template <class Handler, class... Args>
pending_handler<Args...>* make_handler(runtime::context& ctx, Handler&& h,
                                       handler_slot* slot = nullptr) {
  using node = handler_node<std::decay_t<Handler>, Args...>;
  if constexpr (node::fits_slot) {
    if (slot != nullptr && !slot->used) {
      slot->used = true;
      return ::new (static_cast<void*>(slot->bytes)) node(ctx, std::forward<Handler>(h), slot);
    }
  }
  typename node::allocator_type a(asio::get_associated_allocator(h));
  node* p = std::allocator_traits<typename node::allocator_type>::allocate(a, 1);
  try {
    return ::new (static_cast<void*>(p)) node(ctx, std::forward<Handler>(h), nullptr);
  } catch (...) {
    std::allocator_traits<typename node::allocator_type>::deallocate(a, p, 1);
    throw;
  }
}

}  // namespace detail

struct connection_stats {
  std::uint64_t receives = 0;  ///< blocks handed up
  std::uint64_t received_bytes = 0;
  std::uint64_t recv_arms = 0;  ///< receive submissions (multishot arms or plain recvs)
  std::uint64_t enobufs = 0;    ///< multishot receives ended by an empty buffer ring
  std::uint64_t timeouts = 0;   ///< receive or send timeouts that fired (not a lingering close's)
  std::uint64_t lingered = 0;   ///< lingering closes that had input to drop
  std::uint64_t lingered_bytes = 0;  ///< bytes they dropped
};

class connection final : private buffer_waiter {
 public:
  /// Takes ownership of `fd` (a connected stream socket; made O_NONBLOCK here so every
  /// fallback waits for readiness instead of blocking the loop; TCP_NODELAY when
  /// opts.tcp_nodelay and TCP_NOTSENT_LOWAT when opts.notsent_lowat, if the socket is TCP).
  /// `ring` may be null.
  connection(runtime::context& ctx, int fd, const options& opts, pipe_pool& pipes,
             recv_buffer_ring* ring);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  int fd() const noexcept { return fd_; }
  runtime::context& get_context() noexcept { return ctx_; }
  /// True when receives use multishot + the buffer ring.
  bool multishot() const noexcept { return ring_ != nullptr; }
  void set_phase(phase p) noexcept { phase_ = p; }
  phase current_phase() const noexcept { return phase_; }
  /// Receives fail with ETIMEDOUT once `when` has passed, however recently bytes came: the
  /// bound on a whole wait (a request head, an idle gap) that a peer sending a byte now and
  /// then cannot stretch, as the per-receive phase timeouts alone allow. A layer above the
  /// connection (TLS) turns many receives into one read; this holds across them.
  /// time_point::max() (the default) sets none; a lingering close replaces it with its own
  /// (options::linger_time).
  void set_receive_deadline(std::chrono::steady_clock::time_point when);
  bool closing() const noexcept { return closing_; }
  /// A lingering close is dropping the peer's input (async_lingering_close).
  bool lingering() const noexcept { return lingering_; }

  /// Receives the next block. Signature void(std::error_code, received). One receive at a
  /// time. End of stream: no error, empty `received`.
  template <class Token>
  auto async_receive(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, received)>(
        [this](auto handler) {
          start_receive(detail::make_handler<decltype(handler), std::error_code, received>(
              ctx_, std::move(handler), &recv_slot_));
        },
        token);
  }

  /// Sends a whole chain (transmit.h). Signature void(std::error_code, std::uint64_t).
  /// One send at a time. `message` is left empty. With a plain callback as the token it holds
  /// the storage of the connection's previous message (transmit_op::start), so a caller that
  /// builds each message in the same chain allocates nothing for it; tokens that move their
  /// arguments into a frame first (use_awaitable, deferred) leave it without storage.
  template <class Token>
  auto async_send(fs::chain&& message, Token&& token) {
    return async_send(std::move(message), send_flags::none, std::forward<Token>(token));
  }
  /// The same, with send_flags::more when the next send continues this message (transmit.h).
  template <class Token>
  auto async_send(fs::chain&& message, send_flags flags, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, std::uint64_t)>(
        [this, flags](auto handler, fs::chain&& m) {
          start_send(std::move(m), flags,
                     detail::make_handler<decltype(handler), std::error_code, std::uint64_t>(
                         ctx_, std::move(handler), &send_slot_));
        },
        token, std::move(message));
  }

  /// shutdown + cancel-by-fd + wait for every operation + close. Signature
  /// void(std::error_code). Pending receive/send handlers complete first (ECANCELED).
  template <class Token>
  auto async_close(Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this](auto handler) {
          start_close(
              detail::make_handler<decltype(handler), std::error_code>(ctx_, std::move(handler)));
        },
        token);
  }

  /// Lingering close (RFC 9112 §9.6; nginx's lingering_close), for after the last send when
  /// the peer may still be sending: requests pipelined after a "Connection: close", a request
  /// body not read, the rest of a request refused at its first line. Closing a socket with input
  /// unread, or closing it before input that is still on its way arrives, makes the kernel send
  /// a reset, which also destroys what the peer has not yet received of the bytes sent: the tail
  /// of the last response. So when it lingers (`when`: always, or input_waiting and input is
  /// received and not taken, or still in the socket) this shuts down the sending side only (a
  /// FIN follows every byte queued), receives and drops what comes until the peer's end of
  /// stream, an error, options::linger_timeout with no byte or options::linger_time in all, and
  /// then closes as async_close does. Otherwise, or with a receive pending, it is async_close.
  /// Signature void(std::error_code). An async_close during the lingering cuts it short: the
  /// lingering close's handler runs when the socket is closed; the async_close's at once, with
  /// operation_in_progress.
  template <class Token>
  auto async_lingering_close(linger_when when, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [this, when](auto handler) {
          start_lingering_close(when, detail::make_handler<decltype(handler), std::error_code>(
                                          ctx_, std::move(handler)));
        },
        token);
  }

  /// Path counters of every send on this connection.
  transmit_stats send_stats() const noexcept;
  const connection_stats& stats() const noexcept { return stats_; }

 private:
  struct recv_op;
  struct sender;
  struct watchdog;
  friend struct recv_op;
  friend struct sender;
  friend struct watchdog;

  void start_receive(detail::pending_handler<std::error_code, received>* h);
  void start_send(fs::chain&& m, send_flags flags,
                  detail::pending_handler<std::error_code, std::uint64_t>* h);
  void start_close(detail::pending_handler<std::error_code>* h);
  void start_lingering_close(linger_when when, detail::pending_handler<std::error_code>* h);
  void linger_receive();
  bool input_waiting() const noexcept;
  void arm_receive();
  void on_recv_cqe(int result, unsigned flags, bool last);
  void deliver_receive(std::error_code ec, received r);
  void deliver_queued();
  void queue_push(received r);
  received queue_pop();
  void on_send_done(std::error_code ec, std::uint64_t bytes);
  void arm_watchdog();
  void on_watchdog();
  /// When the pending receive times out: its phase timeout or the receive deadline.
  std::chrono::steady_clock::time_point receive_due() const noexcept;
  bool buffers_available() override;
  void maybe_finish_close();
  std::chrono::steady_clock::time_point next_deadline() const noexcept;
  std::chrono::milliseconds receive_timeout() const noexcept;

  runtime::context& ctx_;
  const options& opts_;
  recv_buffer_ring* ring_;
  int fd_;
  std::unique_ptr<recv_op> recv_;
  std::unique_ptr<sender> sender_;
  std::unique_ptr<watchdog> watchdog_;
  // Received blocks nobody has taken yet: a circular buffer over queue_ (grows only past the
  // ring's buffer count, which the kernel cannot exceed).
  std::vector<received> queue_;
  std::size_t queue_head_ = 0, queue_size_ = 0;
  struct deliver_node : runtime::task_node {
    connection* self = nullptr;
  } deliver_;
  bool delivery_pending_ = false;   // deliver_ is queued: the next block goes through it
  detail::handler_slot recv_slot_;  // the receive handler's node (one receive at a time)
  detail::handler_slot send_slot_;  // the send handler's node (one send at a time)
  std::error_code recv_error_;      // a terminal receive result not yet handed up
  bool recv_eof_ = false;
  detail::pending_handler<std::error_code, received>* recv_handler_ = nullptr;
  detail::pending_handler<std::error_code, std::uint64_t>* send_handler_ = nullptr;
  detail::pending_handler<std::error_code>* close_handler_ = nullptr;
  detail::pending_handler<std::error_code>* linger_handler_ = nullptr;
  bool lingering_ = false;
  std::chrono::steady_clock::time_point recv_started_{};
  std::chrono::steady_clock::time_point recv_deadline_ =
      std::chrono::steady_clock::time_point::max();
  phase phase_ = phase::header;
  bool send_timed_out_ = false;
  bool watchdog_pending_ = false;
  std::chrono::steady_clock::time_point watchdog_expiry_{};
  bool closing_ = false;
  bool closed_ = false;
  connection_stats stats_;
};

}  // namespace pagewire::net
