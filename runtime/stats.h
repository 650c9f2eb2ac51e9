#pragma once

/// Per-context counters. Written by the context's loop thread (and, for `posted`,
/// by any thread); readable from any thread at any time with relaxed loads. A
/// `snapshot()` is a plain struct copy for printing and asserting.

#include <atomic>
#include <cstdint>

namespace pagewire::runtime {

/// A point-in-time copy of `context_stats`.
struct stats_snapshot {
  std::uint64_t submitted = 0;        ///< SQEs handed to the kernel (or the fallback)
  std::uint64_t completed = 0;        ///< operations that reached their final CQE
  std::uint64_t cqes = 0;             ///< CQEs reaped, multishot/notif included
  std::uint64_t enters = 0;           ///< io_uring_enter calls made by the loop
  std::uint64_t cq_overflows = 0;     ///< times the kernel flagged a CQ overflow
  std::uint64_t cq_dropped = 0;       ///< CQEs the kernel dropped (koverflow)
  std::uint64_t stale_cqes = 0;       ///< CQEs whose generation tag did not match
  std::uint64_t fallbacks = 0;        ///< 1 when the context runs on the fallback
  std::uint64_t posted = 0;           ///< functions posted through post()
  std::uint64_t faults_injected = 0;  ///< results replaced by fault injection
  std::uint64_t polled_wakeups = 0;   ///< busy polls that found work (sleeps avoided)
  std::uint64_t polled_idle = 0;      ///< busy polls that ran out and slept in the kernel
};

/// Counters of one context. Relaxed atomics: each counter is exact, the set is
/// not read atomically as a whole.
class context_stats {
 public:
  std::atomic<std::uint64_t> submitted{0};
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> cqes{0};
  std::atomic<std::uint64_t> enters{0};
  std::atomic<std::uint64_t> cq_overflows{0};
  std::atomic<std::uint64_t> cq_dropped{0};
  std::atomic<std::uint64_t> stale_cqes{0};
  std::atomic<std::uint64_t> fallbacks{0};
  std::atomic<std::uint64_t> posted{0};
  std::atomic<std::uint64_t> faults_injected{0};
  std::atomic<std::uint64_t> polled_wakeups{0};
  std::atomic<std::uint64_t> polled_idle{0};

  /// Adds `n` to `counter` from the owning thread (a relaxed load+store, no
  /// locked instruction: only one thread writes each of these counters).
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  stats_snapshot snapshot() const noexcept {
    constexpr auto r = std::memory_order_relaxed;
    return {submitted.load(r),       completed.load(r),      cqes.load(r),
            enters.load(r),          cq_overflows.load(r),   cq_dropped.load(r),
            stale_cqes.load(r),      fallbacks.load(r),      posted.load(r),
            faults_injected.load(r), polled_wakeups.load(r), polled_idle.load(r)};
  }
};

}  // namespace pagewire::runtime
