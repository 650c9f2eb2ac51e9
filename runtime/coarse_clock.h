#pragma once

/// coarse_now(): steady_clock's time from CLOCK_MONOTONIC_COARSE.
///
/// The same epoch as std::chrono::steady_clock (CLOCK_MONOTONIC), read from the kernel's last
/// tick without a TSC read: it lags the precise clock by at most one tick (1-4 ms) and costs a
/// fraction of a steady_clock::now(). For per-request and per-message stamps of timeouts
/// counted in seconds (send progress, header, idle, linger): a deadline computed from it is at
/// most one tick early, and compares correctly with steady_clock::now().
///
/// Threading: any thread; no state.

#include <chrono>
#include <time.h>

namespace pagewire::runtime {

inline std::chrono::steady_clock::time_point coarse_now() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
}

}  // namespace pagewire::runtime
