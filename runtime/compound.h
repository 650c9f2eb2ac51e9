#pragma once

/// A compound operation: a parent over child operations (the seeds' io_count).
/// It completes when its last child has, with the sum of the children's bytes and
/// the first error. cancel() cascades: every child still in flight gets an
/// IORING_OP_ASYNC_CANCEL. A child that fails with a transient error (EAGAIN,
/// EINTR, ENOBUFS) is resubmitted, and one that transferred fewer bytes than
/// expected is resubmitted for the rest (operation::consume), up to max_retries
/// times, without the parent or the child's other layers noticing.
///
/// Linkage lives here, not in the children: the compound pushes one completion
/// action per child (a node it owns), so plain operations carry nothing extra.
/// Ownership: the caller owns the children and the compound; both outlive the
/// compound's completion. Children must not be started by anyone else while
/// attached. The parent's completion runs on the loop after the last child's
/// complete() returned (a deferred task), never inside it. Loop thread only.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <system_error>

#include <pagewire/runtime/completion_stack.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/operation.h>
#include <pagewire/runtime/task.h>

namespace pagewire::runtime {

struct compound_options {
  unsigned max_retries = 8;  ///< per child, transient errors and short transfers together
};

class compound {
 public:
  explicit compound(context& ctx, compound_options options = {});
  compound(const compound&) = delete;
  compound& operator=(const compound&) = delete;
  virtual ~compound() = default;

  /// Attaches `child`. `expected_bytes` > 0 enables the short-transfer retry: a
  /// result below what is left triggers consume(result) and a resubmission.
  void add(operation& child, std::size_t expected_bytes = 0);
  /// Starts every attached child that has not started (one SQE each).
  void start();
  /// Cancels every child still in flight (and stops retries).
  void cancel();

  std::size_t children() const noexcept { return links_.size(); }
  std::size_t pending() const noexcept { return pending_; }
  std::size_t bytes() const noexcept { return bytes_; }
  std::uint64_t retries() const noexcept { return retries_; }
  /// The first error a child reported (after retries), or empty.
  std::error_code error() const noexcept { return error_; }
  bool done() const noexcept { return done_; }

  /// Detaches every child and clears the counters, for reuse after completion.
  void reset();

 protected:
  /// The parent's completion: runs once, on the loop, after every child finished.
  virtual void on_complete(std::error_code first_error, std::size_t bytes) = 0;

 private:
  struct link final : completion_action {
    compound* parent = nullptr;
    operation* child = nullptr;
    std::size_t expected = 0;  // bytes still expected (0: no short-transfer check)
    std::size_t transferred = 0;
    unsigned retries = 0;
    bool started = false;
    action_result on_complete(operation& op, int& result, bool deferred) override;
  };
  static void run_completion(task_node* t, bool invoke);
  void child_done(link& l, int result);

  context& ctx_;
  compound_options options_;
  std::deque<link> links_;
  std::size_t pending_ = 0;
  std::size_t bytes_ = 0;
  std::uint64_t retries_ = 0;
  std::error_code error_;
  bool cancelled_ = false;
  bool done_ = false;
  struct completion_node : task_node {
    compound* self = nullptr;
  } completion_;
};

}  // namespace pagewire::runtime
