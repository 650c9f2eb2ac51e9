#pragma once

/// Completion actions that layers stack on an operation (the seeds' "stacking of
/// completion events"). When the operation's last CQE arrives, the context runs
/// the actions LIFO (the last pushed, i.e. the lowest layer, first); each may
/// rewrite the result (e.g. TLS maps ciphertext bytes to plaintext bytes). Only
/// after the last action does the operation count as done, and only then is
/// operation::complete() called (waiters woken, handler invoked).
///
/// Ownership: nodes are intrusive and owned by the pusher, who keeps them alive
/// until they ran (or until the operation is destroyed without completing).
/// An operation with nothing pushed pays one null-pointer test, no allocation.
/// Threading: push on the loop thread of the context that runs the operation.

namespace pagewire::runtime {

class operation;

/// What an action tells the unwinding loop.
enum class action_result {
  done,   ///< finished: popped, the next action (or complete()) runs
  defer,  ///< run me later on the loop, outside the completion path: the
          ///< context calls on_complete again with deferred = true; stays on top
  keep,   ///< I took the operation over (e.g. resubmitted it for a retry):
          ///< unwinding stops here, I stay on the stack for its next completion
};

class completion_action {
 public:
  /// Called when the operation it is pushed on completes. `result` is the kernel
  /// result (or what actions below rewrote it to), editable in place.
  /// `deferred` is true when called again after returning action_result::defer.
  virtual action_result on_complete(operation& op, int& result, bool deferred) = 0;

 protected:
  completion_action() = default;
  completion_action(const completion_action&) = delete;
  completion_action& operator=(const completion_action&) = delete;
  ~completion_action() = default;

 private:
  friend class completion_stack;
  completion_action* next_ = nullptr;
};

/// The intrusive LIFO itself: one pointer, embedded in every operation.
class completion_stack {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(completion_action& a) noexcept {
    a.next_ = head_;
    head_ = &a;
  }
  completion_action* top() const noexcept { return head_; }
  void pop() noexcept {
    completion_action* a = head_;
    head_ = a->next_;
    a->next_ = nullptr;
  }
  void clear() noexcept { head_ = nullptr; }

 private:
  completion_action* head_ = nullptr;
};

}  // namespace pagewire::runtime
