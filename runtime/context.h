#pragma once

/// The engine every layer submits to: one ring (or the fallback backend), a slot
/// table mapping user_data to operations, the completion-stack unwinding, a local
/// task queue, a cross-thread post queue, and the loop (run/run_one/poll/stop).
///
/// Threading: one context per thread. Everything except post(), stop(),
/// work_started()/work_finished() and stats() must be called on the thread that
/// runs the loop (with ring_options::enable_lazily, that thread becomes the ring's
/// single issuer at the first enter; context_pool builds each context on its own
/// thread). Lifetime: the destructor calls shutdown(): every operation still in
/// flight is cancelled and reaped (its complete() runs with -ECANCELED or its real
/// result), posted tasks that never ran are destroyed without running.
/// Errors: operation results are negated errnos; nothing here throws on the I/O
/// path (the constructor throws std::system_error only when backend_kind::io_uring
/// was forced and io_uring cannot be set up).

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <pagewire/runtime/fault_injection.h>
#include <pagewire/runtime/operation.h>
#include <pagewire/runtime/ring.h>
#include <pagewire/runtime/stats.h>
#include <pagewire/runtime/task.h>

namespace boost::asio {
class io_context;
class execution_context;
}  // namespace boost::asio

namespace pagewire::runtime {

class executor;
class fallback_backend;

enum class backend_kind : std::uint8_t {
  automatic,  ///< io_uring; the fallback when io_uring cannot be set up
  io_uring,   ///< io_uring or throw
  fallback,   ///< Boost.Asio epoll reactor with plain syscalls (tests force it)
};

struct context_options {
  ring_options ring;
  backend_kind backend = backend_kind::automatic;
  /// Honour PAGEWIRE_FORCE_FALLBACK=1 in the environment (as backend = fallback).
  bool read_environment = true;
  /// The fallback runs its reactor on this io_context instead of its own
  /// (asio_host sets it).
  boost::asio::io_context* fallback_host = nullptr;
  /// Busy polling: before the loop sleeps in io_uring_enter, it watches the completion
  /// queue and the kernel's task-work flag (IORING_SQ_TASKRUN) for up to this long, and
  /// goes on without a system call or a wake-up when something arrives. 0 (the default):
  /// sleep at once. A loop under load then never idles its core: worth it only where the
  /// loop owns a core (a pinned server), where it saves the wake-up of every completion
  /// that arrives while it would have slept; elsewhere it burns CPU other threads could
  /// use. io_uring only; the fallback ignores it. Counted in polled_wakeups / polled_idle.
  std::chrono::microseconds busy_poll{0};
};

/// One element of a linked submission (start_linked).
struct linked_op {
  operation* op = nullptr;
  /// > 0: a per-operation timeout (IORING_OP_LINK_TIMEOUT after it); on expiry the
  /// operation completes with -ECANCELED and the rest of the chain too.
  std::chrono::nanoseconds timeout{0};
};

class context {
 public:
  explicit context(const context_options& options = {});
  context(const context&) = delete;
  context& operator=(const context&) = delete;
  ~context();

  // ---- what runs underneath --------------------------------------------------
  bool uses_io_uring() const noexcept { return ring_ != nullptr; }
  /// The ring, for registrations (fixed buffers, buffer rings); null on fallback.
  ring* native_ring() noexcept { return ring_.get(); }
  /// Kernel features. On the fallback: what it emulates (splice, SEND_ZC as plain
  /// send with a synthesized NOTIF, multishot accept); buffer rings, multishot
  /// recv and fixed-buffer registration are false.
  const probe_result& probe() const noexcept { return probe_; }
  /// Why the fallback is in use (EPERM, ...), or empty.
  std::error_code fallback_reason() const noexcept { return fallback_reason_; }
  const context_stats& stats() const noexcept { return stats_; }
  /// Fault rules for this context (consulted only when faults_enabled()).
  fault_injector& faults() noexcept { return faults_; }

  // ---- submission (loop thread) ----------------------------------------------
  /// Prepares `op` into an SQE and queues it; the SQE reaches the kernel at the
  /// next loop step, submit(), or when the SQ is full. `op` must be idle or done.
  void start(operation& op);
  /// start() followed by an IORING_OP_LINK_TIMEOUT: after `timeout` the operation
  /// is cancelled (completes with -ECANCELED).
  void start(operation& op, std::chrono::nanoseconds timeout);
  /// Queues `ops` as one IOSQE_IO_LINK chain in one submission: each starts after
  /// the previous succeeded; a failure (or a short read/write/send/recv, as the
  /// kernel defines it) completes the rest with -ECANCELED. EINVAL when the chain
  /// (timeouts included) cannot fit the SQ or is empty.
  std::error_code start_linked(std::span<const linked_op> ops);
  /// Cancels `op` (IORING_OP_ASYNC_CANCEL by its user_data). Returns false when it
  /// was not in flight. The operation still completes (usually -ECANCELED).
  bool cancel(operation& op);
  /// Cancels every operation on `fd` (IORING_ASYNC_CANCEL_FD | ALL): those whose SQE names it
  /// as its fd, which for SPLICE and TEE is the output. A splice reading from `fd` keeps
  /// running on io_uring (cancel it with cancel(op)); the fallback backend cancels it too.
  void cancel_fd(int fd);
  /// Cancels every operation in flight on this context.
  void cancel_all();
  /// Hands queued SQEs to the kernel now.
  void submit();

  // ---- tasks -----------------------------------------------------------------
  /// Runs `t` later on this loop (loop thread). The node's owner keeps it alive.
  void defer(task_node& t) noexcept {
    ready_.push(t);
    ++ready_count_;
    maybe_kick();
  }
  /// Runs `f` on this loop; callable from any thread. Allocates one node.
  template <class F>
  void post(F&& f);
  /// Posts a caller-owned node from any thread (no allocation).
  void post_node(task_node& t);

  // ---- loop --------------------------------------------------------------------
  /// Runs until stopped or out of work (no operation in flight, no task queued,
  /// no outstanding work count). Returns the number of handlers run.
  std::size_t run();
  /// Runs at most one handler (a final completion, a partial CQE, or a task),
  /// blocking until one is ready; 0 when stopped or out of work.
  std::size_t run_one();
  /// Runs every ready handler without blocking: tasks that become ready meanwhile (posted
  /// from another thread, deferred by a handler) too. Hands queued SQEs to the kernel (or
  /// the fallback) before it returns. Runs nothing when stopped.
  std::size_t poll();
  /// Makes run()/run_one() return as soon as possible; any thread. Nothing is
  /// cancelled; call shutdown() (or destroy the context) to drain.
  void stop() noexcept;
  bool stopped() const noexcept { return stopped_.load(std::memory_order_acquire); }
  /// Undoes stop() (loop thread). A hosted context (asio_host) stops polling while stopped;
  /// restart() asks its host to poll again.
  void restart() noexcept {
    stopped_.store(false, std::memory_order_release);
    maybe_kick();
  }
  /// Graceful drain: cancels everything in flight, reaps until no operation is
  /// left (each gets its complete()), runs queued tasks. Returns handlers run. Waits
  /// for what a cancel cannot end (a SEND_ZC's notification, I/O running in io-wq), up to
  /// kDrainPatience: what is still in flight then is logged and left to the kernel (its
  /// complete() never runs; the kernel still holds the pages it sends from).
  std::size_t shutdown();
  static constexpr std::chrono::seconds kDrainPatience{10};

  /// True on the thread currently inside run/run_one/poll of this context.
  bool running_in_this_thread() const noexcept;
  /// Operations submitted whose last CQE has not been reaped.
  std::size_t in_flight() const noexcept { return in_flight_; }

  /// Outstanding work that keeps run() from returning (Asio's work counting);
  /// any thread. The last work_finished() wakes a loop waiting on another thread; on the
  /// loop's own thread it wakes nothing (the loop sees it before it waits).
  void work_started() noexcept { work_.fetch_add(1, std::memory_order_relaxed); }
  void work_finished() noexcept;

  /// The Asio executor (define it by including <pagewire/runtime/executor.h>).
  executor get_executor() noexcept;
  /// An Asio execution_context for executor queries (owned by this context, or
  /// the host's io_context when hosted, or the fallback's io_context).
  boost::asio::execution_context& asio_context() noexcept;

  // ---- hosting (used by asio_host) ---------------------------------------------
  /// Called (loop thread) when the context has SQEs or tasks pending and nothing
  /// will run its loop on its own; hosting code schedules a poll().
  void set_kick(void (*fn)(void*), void* arg) noexcept {
    kick_ = fn;
    kick_arg_ = arg;
  }
  /// The fallback's io_context (null on io_uring).
  boost::asio::io_context* fallback_io_context() noexcept;
  /// The eventfd that post()/stop() signal (io_uring backend), or -1.
  int wake_fd() const noexcept { return wake_fd_; }

  /// Delivers one CQE; used by the io_uring reaper and the fallback backend.
  /// Returns true when an operation's partial() or complete() ran.
  bool deliver(std::uint64_t user_data, int result, unsigned flags);

  /// user_data values with this low half are internal (never a slot).
  static constexpr std::uint32_t kInternalSlot = 0xffffffffu;
  static constexpr std::uint64_t kIgnoreUserData = (0ull << 32) | kInternalSlot;
  static constexpr std::uint64_t kWakeUserData = (1ull << 32) | kInternalSlot;

 private:
  struct slot {
    operation* op = nullptr;
    std::uint32_t generation = 1;
    std::uint32_t next_free = 0;
    int fd = -1;
    fault_verdict fault{};
    __kernel_timespec timeout{};  // LINK_TIMEOUT storage, read by the kernel at submit
  };
  static constexpr std::uint32_t kSlotChunkBits = 8;
  slot& slot_at(std::uint32_t i) noexcept {
    return slot_chunks_[i >> kSlotChunkBits][i & ((1u << kSlotChunkBits) - 1)];
  }
  struct stashed_cqe {
    std::uint64_t user_data;
    int result;
    unsigned flags;
  };

  io_uring_sqe* acquire_sqe();
  void ensure_sq_space(unsigned n);
  void stash_cqes();
  void release_slot(std::uint32_t index) noexcept;
  std::uint64_t bind_slot(operation& op);
  void prepare_into(operation& op, io_uring_sqe* sqe, std::uint64_t ud);
  io_uring_sqe* queue_link_timeout(std::uint64_t ud, std::chrono::nanoseconds timeout);
  std::size_t drain();
  void finish(operation& op, bool deferred);
  static void run_deferred(task_node* t, bool invoke);
  bool has_work() const noexcept;
  bool run_task();
  std::size_t reap(std::size_t limit);
  void wait_for_events();
  void submit_nowait();
  void drain_remote();
  void arm_wake();
  void wake() noexcept;
  void maybe_kick() noexcept {
    if (kick_) kick_(kick_arg_);
  }
  void init_fallback(const std::error_code& why);
  bool busy_poll_for_events();

  boost::asio::io_context* fallback_host_ = nullptr;
  std::chrono::nanoseconds busy_poll_{0};
  std::unique_ptr<ring> ring_;
  std::unique_ptr<fallback_backend> fallback_;
  std::unique_ptr<boost::asio::execution_context> own_asio_context_;
  probe_result probe_;
  std::error_code fallback_reason_;
  context_stats stats_;
  fault_injector faults_;

  std::vector<std::unique_ptr<slot[]>> slot_chunks_;  // stable addresses
  std::uint32_t slot_count_ = 0;
  std::vector<stashed_cqe> stash_;  // CQEs taken off a full CQ while submitting
  std::uint32_t free_head_ = kInternalSlot;
  std::size_t in_flight_ = 0;

  task_queue ready_;
  std::size_t ready_count_ = 0;
  std::mutex remote_mutex_;
  task_queue remote_;
  std::atomic<std::size_t> remote_count_{0};
  std::atomic<long> work_{0};
  std::atomic<bool> stopped_{false};

  int wake_fd_ = -1;
  std::uint64_t wake_buf_ = 0;
  bool wake_armed_ = false;
  bool shutting_down_ = false;
  // drain(): a timeout that makes the cancel go out again while nothing else happens.
  static constexpr std::uint64_t kDrainTickUserData = (2ull << 32) | kInternalSlot;
  __kernel_timespec drain_tick_{0, 100 * 1000 * 1000};
  bool drain_tick_armed_ = false;
  bool drain_tick_fired_ = false;
  std::size_t handled_ = 0;  // deliveries that ran a handler (fallback counting)

  void (*kick_)(void*) = nullptr;
  void* kick_arg_ = nullptr;

  friend class fallback_backend;
};

template <class F>
void context::post(F&& f) {
  struct node : task_node {
    explicit node(F&& fn) : fn_(std::forward<F>(fn)) {}
    std::decay_t<F> fn_;
  };
  auto* n = new node(std::forward<F>(f));
  n->fn = [](task_node* t, bool invoke) {
    auto* self = static_cast<node*>(t);
    if (!invoke) {
      delete self;
      return;
    }
    std::decay_t<F> fn(std::move(self->fn_));
    delete self;
    fn();
  };
  post_node(*n);
}

}  // namespace pagewire::runtime
