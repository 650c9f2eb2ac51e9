#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/fs/stats.h>

namespace pagewire::fs {
namespace {

TEST(Stats, RecordCopyCountsBytesAndCallsPerReason) {
  copy_snapshot before = stats::snapshot();
  stats::record_copy(100, copy_reason::filter);
  stats::record_copy(7, copy_reason::tls);
  copy_snapshot d = stats::snapshot() - before;
  EXPECT_EQ(d.bytes[static_cast<std::size_t>(copy_reason::filter)], 100u);
  EXPECT_EQ(d.bytes[static_cast<std::size_t>(copy_reason::tls)], 7u);
  EXPECT_EQ(d.calls[static_cast<std::size_t>(copy_reason::filter)], 1u);
  EXPECT_EQ(d.total_bytes(), 107u);
  EXPECT_EQ(d.total_calls(), 2u);
}

TEST(Stats, CopyMovesBytesAndCountsThem) {
  char src[5] = {'a', 'b', 'c', 'd', 'e'};
  char dst[5] = {};
  std::uint64_t before = stats::copied_bytes();
  stats::copy(dst, src, sizeof(src), copy_reason::gather);
  EXPECT_EQ(std::string(dst, 5), "abcde");
  EXPECT_EQ(stats::copied_bytes() - before, 5u);
}

TEST(Stats, ConcurrentRecordsFromManyThreadsSumExactly) {
  copy_snapshot before = stats::snapshot();
  constexpr int kThreads = 8;
  constexpr int kRecords = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kRecords; ++i)
        stats::record_copy(3, copy_reason::fallback);
    });
  }
  for (auto& t : threads)
    t.join();
  copy_snapshot d = stats::snapshot() - before;
  EXPECT_EQ(d.bytes[static_cast<std::size_t>(copy_reason::fallback)], 3u * kThreads * kRecords);
  EXPECT_EQ(d.calls[static_cast<std::size_t>(copy_reason::fallback)],
            std::uint64_t{kThreads} * kRecords);
}

}  // namespace
}  // namespace pagewire::fs
