#include <chrono>

#include <gtest/gtest.h>

#include <pagewire/runtime/coarse_clock.h>

namespace pagewire::runtime {
namespace {

using namespace std::chrono_literals;

// The same epoch as steady_clock, never ahead of it and at most a tick behind: deadlines built
// from it compare correctly with steady_clock::now() (a clock with another epoch, such as
// CLOCK_REALTIME_COARSE, is decades away and fails this).
TEST(coarse_clock, is_steady_clock_at_most_one_tick_behind) {
  for (int i = 0; i < 1000; ++i) {
    const auto coarse = coarse_now();
    const auto precise = std::chrono::steady_clock::now();
    ASSERT_LE(coarse, precise);
    ASSERT_LT(precise - coarse, 50ms);  // a tick is 1-10 ms; the slack is for a preemption
  }
}

TEST(coarse_clock, moves_forward_with_the_tick) {
  const auto start = coarse_now();
  auto now = start;
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  while (now == start && std::chrono::steady_clock::now() < give_up)
    now = coarse_now();
  EXPECT_GT(now, start);
  EXPECT_GE(coarse_now(), now);
}

}  // namespace
}  // namespace pagewire::runtime
