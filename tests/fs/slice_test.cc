#include <cstring>
#include <random>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>
#include <pagewire/fs/stats.h>

namespace pagewire::fs {
namespace {

slice filled_slice(page_pool& pool, char c, std::size_t len) {
  page_ref p = pool.allocate();
  std::memset(p.data(), c, kPageSize);
  return slice(std::move(p), 0, len);
}

TEST(Slice, ShareViewsTheSameBytesAndOnlyBumpsTheRefcount) {
  page_pool pool;
  slice s = filled_slice(pool, 'x', 1000);
  std::uint64_t copied = stats::copied_bytes();
  slice a = s.share(10, 100);
  EXPECT_EQ(a.data(), s.data() + 10);
  EXPECT_EQ(a.size(), 100u);
  EXPECT_EQ(a.page(), s.page());
  EXPECT_EQ(s.page()->use_count(), 2u);
  slice b = s.share();
  EXPECT_EQ(b.data(), s.data());
  EXPECT_EQ(s.page()->use_count(), 3u);
  EXPECT_EQ(stats::copied_bytes(), copied);
  EXPECT_EQ(pool.stats().pages_in_use, 1u);
}

TEST(Slice, SplitCarvesNonOverlappingChildrenOfOneParent) {
  page_pool pool;
  slice s = filled_slice(pool, 'y', 4096);
  const std::byte* base = s.data();
  std::uint64_t copied = stats::copied_bytes();
  slice first = s.split(1000);
  slice second = s.split(96);
  EXPECT_EQ(first.data(), base);
  EXPECT_EQ(first.size(), 1000u);
  EXPECT_EQ(second.data(), base + 1000);
  EXPECT_EQ(second.size(), 96u);
  EXPECT_EQ(s.data(), base + 1096);
  EXPECT_EQ(s.size(), 3000u);
  EXPECT_EQ(s.page_offset(), 1096u);
  EXPECT_EQ(s.page()->use_count(), 3u);
  EXPECT_EQ(stats::copied_bytes(), copied);
}

TEST(Slice, TrimFrontAndBackMoveTheViewWithoutCopying) {
  page_pool pool;
  slice s = filled_slice(pool, 'z', 100);
  const std::byte* base = s.data();
  s.trim_front(30);
  s.trim_back(20);
  EXPECT_EQ(s.data(), base + 30);
  EXPECT_EQ(s.size(), 50u);
  s.trim_front(50);
  EXPECT_TRUE(s.empty());
}

TEST(Slice, MergeJoinsOnlyAdjacentViewsOfOnePage) {
  page_pool pool;
  slice s = filled_slice(pool, 'm', 300);
  slice a = s.share(0, 100);
  slice b = s.share(100, 50);
  slice c = s.share(200, 50);
  EXPECT_TRUE(a.merge(b));
  EXPECT_EQ(a.size(), 150u);
  EXPECT_FALSE(a.merge(c));
  slice other = filled_slice(pool, 'o', 10);
  EXPECT_FALSE(a.merge(other));
}

TEST(Slice, LastReferenceReturnsThePageToThePool) {
  page_pool pool;
  {
    slice s = filled_slice(pool, 'r', 10);
    slice t = s.share(0, 5);
    EXPECT_EQ(pool.stats().pages_in_use, 1u);
    s = slice();
    EXPECT_EQ(pool.stats().pages_in_use, 1u);
  }
  page_pool_stats st = pool.stats();
  EXPECT_EQ(st.pages_in_use, 0u);
  EXPECT_EQ(st.pages_free, st.pages_total);
}

TEST(Slice, StaticSliceHasNoPageAndNoBufferIndex) {
  static const char kCrlf[] = "\r\n";
  slice s = slice::from_static(kCrlf, 2);
  EXPECT_FALSE(s.page());
  EXPECT_EQ(s.buffer_index(), -1);
  EXPECT_EQ(static_cast<const void*>(s.data()), kCrlf);
  slice t = s.split(1);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(s.size(), 1u);
}

// 10,000 random operations over a working set of slices; after each one the pool's in-use count
// equals the number of distinct pages the set references, and after dropping all it is zero.
TEST(Slice, PoolAccountingIsExactAfterTenThousandRandomSplitShareDropSequences) {
  page_pool pool;
  std::mt19937 rng(12345);
  std::vector<slice> live;
  std::uint64_t copied = stats::copied_bytes();
  for (int step = 0; step < 10000; ++step) {
    unsigned op = live.size() > 200 ? 4 : rng() % 5;  // keep the working set bounded
    if (live.empty() || op == 0) {
      page_ref p = pool.allocate();
      ASSERT_TRUE(p);
      live.emplace_back(std::move(p), rng() % 64, 1 + rng() % (kPageSize - 64));
    } else {
      std::size_t i = rng() % live.size();
      slice& s = live[i];
      if (op == 1) {
        std::size_t off = s.size() ? rng() % s.size() : 0;
        std::size_t len = s.size() - off ? rng() % (s.size() - off + 1) : 0;
        live.push_back(s.share(off, len));
      } else if (op == 2) {
        std::size_t n = rng() % (s.size() + 1);
        slice front = s.split(n);
        live.push_back(std::move(front));
      } else if (op == 3) {
        s.trim_front(rng() % (s.size() + 1));
      } else {
        live[i] = std::move(live.back());
        live.pop_back();
      }
    }
    std::set<const page*> distinct;
    for (const slice& s : live)
      distinct.insert(s.page().get());
    page_pool_stats st = pool.stats();
    ASSERT_EQ(st.pages_in_use, distinct.size()) << "step " << step;
    ASSERT_EQ(st.pages_in_use + st.pages_free, st.pages_total);
  }
  live.clear();
  page_pool_stats st = pool.stats();
  EXPECT_EQ(st.pages_in_use, 0u);
  EXPECT_EQ(st.pages_free, st.pages_total);
  EXPECT_EQ(stats::copied_bytes(), copied);
}

}  // namespace
}  // namespace pagewire::fs
