#pragma once

/// One SQE's worth of work: a non-movable object that fills an SQE (`prepare`)
/// and receives its completion (`complete`). Derive from it; the context never
/// allocates or owns operations. The object must stay alive until complete() was
/// called (or until the context that runs it is destroyed, which cancels and
/// drains every operation in flight first).
///
/// Identity in user_data: a context keeps a slot table; user_data =
/// generation << 32 | slot index, and the slot holds the operation's address and
/// its current generation. A CQE whose generation does not match its slot (a
/// late CQE after the operation completed and the slot was reused, or a stray
/// cancel result) is counted as stale and dropped before any operation memory is
/// touched: the context reads only its own slot table. Generations start at 1, so
/// user_data is never 0.
///
/// CQEs: every CQE with IORING_CQE_F_MORE (multishot accept/recv results,
/// SEND_ZC's first CQE) goes to partial(); the operation stays registered until a
/// CQE without F_MORE. For that last CQE the completion stack runs, then
/// complete(). When the last CQE is a notification (IORING_CQE_F_NOTIF: SEND_ZC),
/// the result passed on is that of the last F_MORE CQE (the bytes sent), and the
/// flags keep F_NOTIF so the operation knows its buffer is free.
///
/// Threading: an operation belongs to one context's loop thread while in flight.

#include <cstddef>
#include <cstdint>
#include <system_error>

#include <liburing.h>

#include <pagewire/runtime/completion_stack.h>
#include <pagewire/runtime/task.h>

namespace pagewire::runtime {

class context;

class operation {
 public:
  operation() = default;
  operation(const operation&) = delete;
  operation& operator=(const operation&) = delete;
  operation(operation&&) = delete;
  operation& operator=(operation&&) = delete;
  virtual ~operation() = default;

  /// Fills `sqe` (opcode, fd, buffers, flags), which arrives zeroed. user_data is set by the
  /// context afterwards; do not set IOSQE_IO_LINK here (start_linked does).
  virtual void prepare(io_uring_sqe* sqe) = 0;

  /// The final completion, after every stacked action ran: the operation is done.
  /// `result` >= 0 is the kernel's result (bytes, fd), < 0 a negated errno (a cancelled
  /// operation: -ECANCELED, or -EINTR when the cancel interrupted it while it blocked, never
  /// the kernel's internal restart codes).
  /// Wake waiters / invoke handlers here. May destroy the operation or restart it.
  virtual void complete(int result, unsigned cqe_flags) = 0;

  /// A CQE with IORING_CQE_F_MORE: more CQEs follow for this operation.
  virtual void partial(int result, unsigned cqe_flags) {
    (void)result;
    (void)cqe_flags;
  }

  /// Advances past `bytes` already transferred so that a new prepare() covers
  /// only the rest (used by compound retries of short transfers). Returns false
  /// when the operation cannot resume (the default).
  virtual bool consume(std::size_t bytes) {
    (void)bytes;
    return false;
  }

  /// Stacks a completion action (see completion_stack.h). Loop thread only; push
  /// before the last CQE arrives.
  void push_action(completion_action& a) noexcept { actions_.push(a); }
  bool has_actions() const noexcept { return !actions_.empty(); }

  /// Submitted and its last CQE not yet reaped.
  bool in_flight() const noexcept { return state_ == state::in_flight; }
  /// The last CQE arrived and every stacked action ran.
  bool done() const noexcept { return state_ == state::done; }
  /// The final result, valid once done() (or inside actions: the kernel's).
  int result() const noexcept { return result_; }
  /// The result as an error_code (empty for result >= 0).
  std::error_code error() const noexcept {
    return result_ < 0 ? std::error_code(-result_, std::system_category()) : std::error_code();
  }
  /// The user_data of the current (or last) submission: generation << 32 | slot.
  std::uint64_t user_data() const noexcept { return user_data_; }
  /// The raw result of the last NOTIF CQE (SEND_ZC): 0, or usage bits such as
  /// IORING_NOTIF_USAGE_ZC_COPIED (1U << 31) when IORING_SEND_ZC_REPORT_USAGE was asked.
  int notif_result() const noexcept { return notif_result_; }
  /// The opcode prepare() wrote at the last submission.
  std::uint8_t opcode() const noexcept { return opcode_; }

 private:
  friend class context;
  enum class state : std::uint8_t { idle, in_flight, completing, done };

  struct defer_node : task_node {
    operation* op = nullptr;
    context* ctx = nullptr;
  };

  completion_stack actions_;
  std::uint64_t user_data_ = 0;
  int result_ = 0;
  int more_result_ = 0;
  int notif_result_ = 0;
  unsigned cqe_flags_ = 0;
  std::uint8_t opcode_ = 0;
  state state_ = state::idle;
  defer_node deferred_;
};

}  // namespace pagewire::runtime
