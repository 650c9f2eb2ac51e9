#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sys/eventfd.h>
#include <unistd.h>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/io_context.hpp>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/fallback_backend.h>
#include <pagewire/runtime/log.h>

namespace pagewire::runtime {
namespace {

thread_local const context* t_running = nullptr;

struct running_scope {
  explicit running_scope(const context* c) noexcept : prev(t_running) { t_running = c; }
  ~running_scope() { t_running = prev; }
  const context* prev;
};

std::atomic<bool> g_fallback_logged{false};

// The kernel's internal restart codes (include/linux/errno.h), ERESTARTSYS to
// ERESTART_RESTARTBLOCK: never meant to reach userspace.
constexpr int kErestartsys = 512;
constexpr int kErestartRestartblock = 516;

[[noreturn]] void fatal(const char* what, int err) {
  std::fprintf(stderr, "pagewire: %s: %s\n", what, std::strerror(err));
  std::abort();
}

// A spin-wait hint: lets the sibling hyperthread run and saves power while polling.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

context::context(const context_options& options) : fallback_host_(options.fallback_host) {
  bool force = options.backend == backend_kind::fallback;
  if (options.read_environment && options.backend == backend_kind::automatic) {
    const char* env = std::getenv("PAGEWIRE_FORCE_FALLBACK");
    if (env && std::strcmp(env, "1") == 0) force = true;
  }
  if (force) {
    init_fallback(std::make_error_code(std::errc::operation_not_supported));
  } else {
    std::error_code ec;
    ring_ = ring::create(options.ring, ec);
    if (!ring_) {
      if (options.backend == backend_kind::io_uring) throw std::system_error(ec, "io_uring setup");
      init_fallback(ec);
    }
  }
  if (ring_) {
    busy_poll_ = options.busy_poll;
    probe_ = ring_->probe();
    own_asio_context_ = std::make_unique<boost::asio::execution_context>();
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
    if (wake_fd_ < 0) fatal("eventfd", errno);
    arm_wake();
  }
}

void context::init_fallback(const std::error_code& why) {
  fallback_reason_ = why;
  fallback_ = std::make_unique<fallback_backend>(*this, fallback_host_);
  context_stats::bump(stats_.fallbacks);
  probe_ = probe_result{};
  probe_.probed = true;
  probe_.nop = probe_.read_write = probe_.send_recv = probe_.splice = probe_.tee = true;
  probe_.send_zc = probe_.sendmsg_zc = probe_.multishot_accept = probe_.link_timeout = true;
  probe_.cancel_fd = true;
  probe_.fixed_buffers = false;
  if (!g_fallback_logged.exchange(true)) {
    log_line("io_uring unavailable (%s); using the epoll fallback", why.message().c_str());
  }
}

context::~context() {
  drain();
  while (task_node* t = ready_.pop())
    t->fn(t, false);
  {
    std::lock_guard<std::mutex> lock(remote_mutex_);
    while (task_node* t = remote_.pop())
      t->fn(t, false);
  }
  fallback_.reset();
  ring_.reset();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

boost::asio::execution_context& context::asio_context() noexcept {
  if (fallback_) return fallback_->io();
  return *own_asio_context_;
}

boost::asio::io_context* context::fallback_io_context() noexcept {
  return fallback_ ? &fallback_->io() : nullptr;
}

bool context::running_in_this_thread() const noexcept {
  return t_running == this;
}

// ---- slots ---------------------------------------------------------------------

std::uint64_t context::bind_slot(operation& op) {
  std::uint32_t index = free_head_;
  if (index == kInternalSlot) {
    index = slot_count_++;
    if ((index >> kSlotChunkBits) >= slot_chunks_.size()) {
      slot_chunks_.emplace_back(new slot[1u << kSlotChunkBits]);
    }
  } else {
    free_head_ = slot_at(index).next_free;
  }
  slot& s = slot_at(index);
  s.op = &op;
  s.fault = {};
  ++in_flight_;
  return (static_cast<std::uint64_t>(s.generation) << 32) | index;
}

void context::release_slot(std::uint32_t index) noexcept {
  slot& s = slot_at(index);
  s.op = nullptr;
  if (++s.generation == 0) s.generation = 1;
  s.next_free = free_head_;
  free_head_ = index;
  --in_flight_;
}

// ---- submission ----------------------------------------------------------------

void context::stash_cqes() {
  io_uring& r = ring_->native();
  unsigned head;
  io_uring_cqe* cqe;
  unsigned n = 0;
  io_uring_for_each_cqe(&r, head, cqe) {
    stash_.push_back({cqe->user_data, cqe->res, cqe->flags});
    ++n;
  }
  io_uring_cq_advance(&r, n);
}

io_uring_sqe* context::acquire_sqe() {
  if (fallback_) return fallback_->acquire();
  io_uring_sqe* sqe = ring_->try_get_sqe();
  // SQ full: hand the batch to the kernel and retry. A kernel that refuses to
  // submit while its CQ overflows (EBUSY, pre-5.19) gets room by stashing CQEs.
  for (int tries = 0; !sqe; ++tries) {
    int rc = ring_->submit_and_wait(0);
    context_stats::bump(stats_.enters);
    if (rc == -EBUSY || rc == -EAGAIN) {
      stash_cqes();
    } else if (rc < 0 && rc != -EINTR) {
      fatal("io_uring_enter", -rc);
    }
    if (tries > 1000000) fatal("no SQE after submitting", EBUSY);
    sqe = ring_->try_get_sqe();
  }
  return sqe;
}

void context::ensure_sq_space(unsigned n) {
  if (fallback_) return;
  for (int tries = 0; ring_->sq_space_left() < n; ++tries) {
    int rc = ring_->submit_and_wait(0);
    context_stats::bump(stats_.enters);
    if (rc == -EBUSY || rc == -EAGAIN) stash_cqes();
    if (tries > 1000000) fatal("no SQ space after submitting", EBUSY);
  }
}

void context::prepare_into(operation& op, io_uring_sqe* sqe, std::uint64_t ud) {
  // io_uring_get_sqe() hands out the SQ slot as the last submission left it; prepare() gets it
  // zeroed (one cache line, about to be written anyway), as operation::prepare promises.
  std::memset(sqe, 0, sizeof(*sqe));
  op.prepare(sqe);
  op.opcode_ = sqe->opcode;
  slot& s = slot_at(static_cast<std::uint32_t>(ud));
  s.fd = sqe->fd;
#ifdef PAGEWIRE_FAULT_INJECTION
  if (faults_.armed()) {
    s.fault = faults_.apply(sqe);
    if (s.fault.what != fault_verdict::none) context_stats::bump(stats_.faults_injected);
  }
#endif
  io_uring_sqe_set_data64(sqe, ud);
  op.user_data_ = ud;
  op.result_ = 0;
  op.more_result_ = 0;
  op.state_ = operation::state::in_flight;
  context_stats::bump(stats_.submitted);
}

[[gnu::hot]] void context::start(operation& op) {
  const std::uint64_t ud = bind_slot(op);
  prepare_into(op, acquire_sqe(), ud);
  maybe_kick();
}

io_uring_sqe* context::queue_link_timeout(std::uint64_t ud, std::chrono::nanoseconds timeout) {
  slot& s = slot_at(static_cast<std::uint32_t>(ud));
  s.timeout.tv_sec = timeout.count() / 1000000000;
  s.timeout.tv_nsec = timeout.count() % 1000000000;
  io_uring_sqe* sqe = acquire_sqe();
  io_uring_prep_link_timeout(sqe, &s.timeout, 0);
  io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  return sqe;
}

void context::start(operation& op, std::chrono::nanoseconds timeout) {
  if (timeout.count() <= 0) return start(op);
  ensure_sq_space(2);
  const std::uint64_t ud = bind_slot(op);
  io_uring_sqe* sqe = acquire_sqe();
  prepare_into(op, sqe, ud);
  sqe->flags |= IOSQE_IO_LINK;
  queue_link_timeout(ud, timeout);
  maybe_kick();
}

std::error_code context::start_linked(std::span<const linked_op> ops) {
  unsigned total = 0;
  for (const linked_op& l : ops) {
    if (!l.op) return std::make_error_code(std::errc::invalid_argument);
    total += l.timeout.count() > 0 ? 2 : 1;
  }
  if (total == 0 || (ring_ && total > ring_->sq_entries())) {
    return std::make_error_code(std::errc::invalid_argument);
  }
  ensure_sq_space(total);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const bool last = i + 1 == ops.size();
    const std::uint64_t ud = bind_slot(*ops[i].op);
    io_uring_sqe* sqe = acquire_sqe();
    prepare_into(*ops[i].op, sqe, ud);
    if (!last || ops[i].timeout.count() > 0) sqe->flags |= IOSQE_IO_LINK;
    if (ops[i].timeout.count() > 0) {
      io_uring_sqe* lt = queue_link_timeout(ud, ops[i].timeout);
      // A linked timeout in the middle of a chain carries IO_LINK on to the next.
      if (!last) lt->flags |= IOSQE_IO_LINK;
    }
  }
  maybe_kick();
  return {};
}

bool context::cancel(operation& op) {
  if (!op.in_flight()) return false;
  if (fallback_) {
    fallback_->cancel(op.user_data_);
    return true;
  }
  io_uring_sqe* sqe = acquire_sqe();
  io_uring_prep_cancel64(sqe, op.user_data_, 0);
  io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  maybe_kick();
  return true;
}

void context::cancel_fd(int fd) {
  if (fallback_) return fallback_->cancel_fd(fd);
  if (probe_.cancel_fd) {
    io_uring_sqe* sqe = acquire_sqe();
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  } else {
    for (std::uint32_t i = 0; i < slot_count_; ++i) {
      slot& s = slot_at(i);
      if (s.op && s.fd == fd) cancel(*s.op);
    }
  }
  maybe_kick();
}

void context::cancel_all() {
  if (fallback_) return fallback_->cancel_all();
  if (probe_.cancel_fd) {
    io_uring_sqe* sqe = acquire_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kIgnoreUserData);
  } else {
    for (std::uint32_t i = 0; i < slot_count_; ++i) {
      if (slot_at(i).op) cancel(*slot_at(i).op);
    }
    if (wake_armed_) {
      io_uring_sqe* sqe = acquire_sqe();
      io_uring_prep_cancel64(sqe, kWakeUserData, 0);
      io_uring_sqe_set_data64(sqe, kIgnoreUserData);
    }
  }
  maybe_kick();
}

void context::submit() {
  submit_nowait();
}

void context::submit_nowait() {
  if (fallback_) return fallback_->flush();
  int rc = ring_->submit_and_wait(0);
  context_stats::bump(stats_.enters);
  if (rc == -EBUSY || rc == -EAGAIN) {
    stash_cqes();
  } else if (rc < 0 && rc != -EINTR) {
    fatal("io_uring_enter", -rc);
  }
}

void context::arm_wake() {
  io_uring_sqe* sqe = acquire_sqe();
  io_uring_prep_read(sqe, wake_fd_, &wake_buf_, sizeof(wake_buf_), 0);
  io_uring_sqe_set_data64(sqe, kWakeUserData);
  wake_armed_ = true;
}

// ---- cross-thread ------------------------------------------------------------

void context::post_node(task_node& t) {
  stats_.posted.fetch_add(1, std::memory_order_relaxed);
  if (running_in_this_thread()) {
    defer(t);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(remote_mutex_);
    remote_.push(t);
    remote_count_.fetch_add(1, std::memory_order_release);
  }
  wake();
}

void context::drain_remote() {
  if (remote_count_.load(std::memory_order_acquire) == 0) return;
  std::size_t n;
  {
    std::lock_guard<std::mutex> lock(remote_mutex_);
    n = remote_count_.exchange(0, std::memory_order_acq_rel);
    ready_.splice(remote_);
  }
  ready_count_ += n;
  if (n) maybe_kick();
}

void context::wake() noexcept {
  if (fallback_) {
    fallback_->wake();
  } else if (wake_fd_ >= 0) {
    eventfd_write(wake_fd_, 1);
  }
}

void context::stop() noexcept {
  stopped_.store(true, std::memory_order_release);
  if (!running_in_this_thread()) wake();
}

// The loop's own thread needs no wake-up: run() and run_one() look at has_work() before they
// wait. Waking from there cost an eventfd write and a CQE per round of a loop run dry.
void context::work_finished() noexcept {
  if (work_.fetch_sub(1, std::memory_order_acq_rel) == 1 && !running_in_this_thread()) wake();
}

// ---- completion ----------------------------------------------------------------

[[gnu::hot]] bool context::deliver(std::uint64_t ud, int result, unsigned flags) {
  context_stats::bump(stats_.cqes);
  const auto index = static_cast<std::uint32_t>(ud);
  if (index == kInternalSlot) {
    if (ud == kWakeUserData) {
      wake_armed_ = false;
      drain_remote();
      if (!shutting_down_) arm_wake();
    } else if (ud == kDrainTickUserData) {
      drain_tick_armed_ = false;
      if (result == -ETIME) drain_tick_fired_ = true;  // (a cancel may have ended it instead)
    }
    return false;
  }
  if (index >= slot_count_) {
    context_stats::bump(stats_.stale_cqes);
    return false;
  }
  slot& s = slot_at(index);
  if (s.generation != static_cast<std::uint32_t>(ud >> 32) || s.op == nullptr) {
    context_stats::bump(stats_.stale_cqes);
    return false;
  }
  operation& op = *s.op;
  // A blocking call that io-wq interrupted for a cancel can end with one of the kernel's
  // restart codes, which have no name in userspace (a splice from a blocking socket gives
  // -ERESTARTSYS, 512). io_uring turns them into -EINTR for reads and writes; so does this for
  // every operation.
  if (static_cast<unsigned>(-result - kErestartsys) <= kErestartRestartblock - kErestartsys) {
    result = -EINTR;
  }
  if (s.fault.what != fault_verdict::none) {
    if (s.fault.what == fault_verdict::replace) {
      result = s.fault.value;
    } else if (result > s.fault.value) {
      result = s.fault.value;
    }
    s.fault = {};
  }
  ++handled_;
  if (flags & IORING_CQE_F_MORE) {
    op.more_result_ = result;
    op.partial(result, flags);
    return true;
  }
  if (flags & IORING_CQE_F_NOTIF) {
    op.notif_result_ = result;
    result = op.more_result_;
  }
  release_slot(index);
  op.result_ = result;
  op.cqe_flags_ = flags;
  op.state_ = operation::state::completing;
  context_stats::bump(stats_.completed);
  finish(op, false);
  return true;
}

void context::finish(operation& op, bool deferred) {
  while (completion_action* a = op.actions_.top()) {
    const action_result r = a->on_complete(op, op.result_, deferred);
    if (r == action_result::defer) {
      op.deferred_.op = &op;
      op.deferred_.ctx = this;
      op.deferred_.fn = &context::run_deferred;
      defer(op.deferred_);
      return;
    }
    if (r == action_result::keep) return;
    op.actions_.pop();
  }
  op.state_ = operation::state::done;
  op.complete(op.result_, op.cqe_flags_);
}

void context::run_deferred(task_node* t, bool invoke) {
  auto* n = static_cast<operation::defer_node*>(t);
  if (!invoke) return;
  n->ctx->finish(*n->op, true);
}

// ---- loop --------------------------------------------------------------------

bool context::has_work() const noexcept {
  return in_flight_ > 0 || ready_count_ > 0 || remote_count_.load(std::memory_order_acquire) > 0 ||
         work_.load(std::memory_order_acquire) > 0;
}

[[gnu::hot]] bool context::run_task() {
  task_node* t = ready_.pop();
  if (!t) return false;
  --ready_count_;
  t->fn(t, true);
  return true;
}

[[gnu::hot]] std::size_t context::reap(std::size_t limit) {
  std::size_t did = 0;
  if (fallback_) {
    const std::size_t before = handled_;
    fallback_->flush();
    while (handled_ - before < limit && fallback_->poll_one()) {
    }
    return handled_ - before;
  }
  io_uring& r = ring_->native();
  while (did < limit) {
    // Stashed CQEs are older than any in the CQ; a handler run here may stash more (a submit
    // that met EBUSY), which then go before the CQ's next entry, so order is kept.
    if (!stash_.empty()) {
      const stashed_cqe c = stash_.front();
      stash_.erase(stash_.begin());
      did += deliver(c.user_data, c.result, c.flags) ? 1 : 0;
      continue;
    }
    unsigned head;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&r, head, cqe) {
      break;
    }
    if (cqe == nullptr) {
      // CQ empty: has the kernel parked CQEs it had no room for?
      if (!ring_->cq_overflow_pending()) break;
      context_stats::bump(stats_.cq_overflows);
      ring_->flush_overflow();
      context_stats::bump(stats_.enters);
      const unsigned dropped = ring_->cq_dropped();
      if (dropped > stats_.cq_dropped.load(std::memory_order_relaxed)) {
        stats_.cq_dropped.store(dropped, std::memory_order_relaxed);
      }
      continue;
    }
    const std::uint64_t ud = cqe->user_data;
    const int res = cqe->res;
    const unsigned flags = cqe->flags;
    io_uring_cqe_seen(&r, cqe);
    did += deliver(ud, res, flags) ? 1 : 0;
  }
  return did;
}

void context::wait_for_events() {
  if (fallback_) {
    fallback_->flush();
    fallback_->run_one();
    return;
  }
  // A drain sleeps in the kernel: the poll returns at once on a stopped context.
  if (busy_poll_.count() > 0 && !shutting_down_ && busy_poll_for_events()) return;
  int rc = ring_->submit_and_wait(1);
  context_stats::bump(stats_.enters);
  if (rc == -EBUSY || rc == -EAGAIN) {
    stash_cqes();
  } else if (rc < 0 && rc != -EINTR && rc != -ETIME) {
    fatal("io_uring_enter", -rc);
  }
}

// Hands queued SQEs to the kernel, then watches the CQ and the task-work flag for up to
// busy_poll_ (the clock read once per 64 looks). True when something arrived (CQEs to reap;
// task work is run by an enter with GETEVENTS first) or stop() was called; false: the caller
// sleeps in the kernel.
bool context::busy_poll_for_events() {
  if (ring_->sq_ready() > 0) submit_nowait();
  const auto deadline = std::chrono::steady_clock::now() + busy_poll_;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (ring_->task_work_pending()) submit_nowait();
      if (ring_->cq_ready() > 0) {
        context_stats::bump(stats_.polled_wakeups);
        return true;
      }
      if (stopped()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
  }
  context_stats::bump(stats_.polled_idle);
  return false;
}

[[gnu::hot]] std::size_t context::run() {
  running_scope scope(this);
  std::size_t n = 0;
  while (!stopped()) {
    std::size_t did = 0;
    for (std::size_t k = ready_count_; k > 0 && run_task(); --k)
      ++did;
    did += reap(std::numeric_limits<std::size_t>::max());
    if (did) {
      n += did;
      continue;
    }
    if (ready_count_ > 0) continue;       // an internal CQE (wake) queued tasks
    if (!has_work() || stopped()) break;  // a stop() whose wake-up we just reaped
    wait_for_events();
  }
  return n;
}

[[gnu::hot]] std::size_t context::run_one() {
  running_scope scope(this);
  while (!stopped()) {
    if (run_task()) return 1;
    if (reap(1)) return 1;
    if (ready_count_ > 0) continue;
    if (!has_work() || stopped()) return 0;
    // The fallback runs handlers inside its wait: count those, or run_one() would block
    // again after a handler already ran.
    const std::size_t before = handled_;
    wait_for_events();
    if (handled_ != before) return 1;
  }
  return 0;
}

std::size_t context::poll() {
  running_scope scope(this);
  std::size_t n = 0;
  while (!stopped()) {
    submit_nowait();
    std::size_t did = 0;
    for (std::size_t k = ready_count_; k > 0 && run_task(); --k)
      ++did;
    did += reap(std::numeric_limits<std::size_t>::max());
    n += did;
    if (!did && ready_count_ == 0) break;  // (an internal CQE, the wake-up, may queue tasks)
  }
  // The last round may have queued SQEs (the wake-up read re-armed by its CQE, a handler's
  // start()): hand them over now, since nothing may run this loop again until they complete.
  if (fallback_) {
    fallback_->flush();
  } else if (ring_->sq_ready() > 0) {
    submit_nowait();
  }
  return n;
}

std::size_t context::shutdown() {
  const std::size_t n = drain();
  if (ring_ && !wake_armed_) arm_wake();  // usable again: post() wakes it
  return n;
}

std::size_t context::drain() {
  running_scope scope(this);
  shutting_down_ = true;
  std::size_t n = 0;
  // io_uring: what had happened when the last cancel went out (operations started plus
  // handlers run). A cancel's own CQE ends the wait below at once, so a cancel every round
  // spun through the rounds in a fraction of a second and then gave up on an operation that no
  // cancel ends sooner (a SEND_ZC waiting for its notification, a read running in io-wq),
  // leaving the kernel to finish it after its memory was freed. A new cancel goes out once
  // something happened (an operation started, or one completed: a chain's next link may then
  // be waiting), and every drain_tick_ while nothing does.
  std::uint64_t cancelled_at = std::numeric_limits<std::uint64_t>::max();
  drain_tick_fired_ = false;
  // Bounded in rounds (handlers may start more operations in every round) and in time (a
  // SEND_ZC's notification waits for a peer that may never read).
  const auto give_up = std::chrono::steady_clock::now() + kDrainPatience;
  for (int round = 0; round < 100000 && std::chrono::steady_clock::now() < give_up; ++round) {
    drain_remote();
    for (std::size_t k = ready_count_; k > 0 && run_task(); --k)
      ++n;
    const bool busy = in_flight_ > 0 || wake_armed_ || (fallback_ && fallback_->jobs() > 0);
    if (!busy && ready_count_ == 0) {
      shutting_down_ = false;
      return n;
    }
    if (busy) {
      const std::uint64_t progress = stats_.submitted.load(std::memory_order_relaxed) + handled_;
      if (fallback_ || progress != cancelled_at || drain_tick_fired_) {
        cancel_all();
        cancelled_at = progress;
        drain_tick_fired_ = false;
      }
      if (fallback_) {
        fallback_->flush();
        n += reap(std::numeric_limits<std::size_t>::max());
        if ((in_flight_ > 0 || fallback_->jobs() > 0) && !fallback_->run_one()) {
          // A stopped host io_context runs no handler: complete what is left here.
          const std::size_t before = handled_;
          fallback_->abandon();
          n += handled_ - before;
        }
      } else {
        n += reap(std::numeric_limits<std::size_t>::max());
        if (in_flight_ > 0 || wake_armed_) {
          if (!drain_tick_armed_) {  // queued after the cancel, which misses it
            io_uring_sqe* sqe = acquire_sqe();
            io_uring_prep_timeout(sqe, &drain_tick_, 0, 0);
            io_uring_sqe_set_data64(sqe, kDrainTickUserData);
            drain_tick_armed_ = true;
          }
          wait_for_events();
        }
      }
      n += reap(std::numeric_limits<std::size_t>::max());
    }
  }
  log_line("shutdown left %zu operations in flight", in_flight_);
  shutting_down_ = false;
  return n;
}

}  // namespace pagewire::runtime
