#pragma once

/// An intrusive queue node for work run later on a context's loop (posted
/// functions, deferred completion actions, compound completions). The node's owner
/// keeps it alive until `fn` ran; `fn(node, false)` only destroys (context torn
/// down before the task could run). Not thread-safe by itself: the context guards
/// its cross-thread queue with a mutex.

namespace pagewire::runtime {

struct task_node {
  /// Runs (invoke = true) or discards (invoke = false) the task. Must not touch the
  /// node after freeing it.
  void (*fn)(task_node* self, bool invoke) = nullptr;
  task_node* next = nullptr;
};

/// FIFO of task_nodes, no allocation.
class task_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(task_node& t) noexcept {
    t.next = nullptr;
    if (tail_) {
      tail_->next = &t;
    } else {
      head_ = &t;
    }
    tail_ = &t;
  }
  task_node* pop() noexcept {
    task_node* t = head_;
    if (t) {
      head_ = t->next;
      if (!head_) tail_ = nullptr;
      t->next = nullptr;
    }
    return t;
  }
  /// Moves every node of `other` to the back of this queue.
  void splice(task_queue& other) noexcept {
    if (other.empty()) return;
    if (tail_) {
      tail_->next = other.head_;
    } else {
      head_ = other.head_;
    }
    tail_ = other.tail_;
    other.head_ = other.tail_ = nullptr;
  }

 private:
  task_node* head_ = nullptr;
  task_node* tail_ = nullptr;
};

}  // namespace pagewire::runtime
