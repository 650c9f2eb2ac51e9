// Model-based test of fs::chain: random operations from fixed seeds, each checked against a
// model after every step (tests/fs/chain_model.h; tests/fuzz/chain_fuzz.cc drives the same
// interpreter from fuzz input).

#include "tests/fs/chain_model.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <sys/uio.h>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>

namespace pagewire::fs {
namespace {

using testing::chain_interpreter;
using testing::chain_model;
using testing::chain_model_fixture;
using testing::check_chain;

// Choices from a fixed-seed generator; `% bound` keeps the sequence the same on every
// standard library (uniform_int_distribution's is not).
struct seeded_pick {
  explicit seeded_pick(std::uint64_t seed) : rng(seed) {}
  std::uint64_t operator()(std::uint64_t bound) { return rng() % bound; }
  std::mt19937_64 rng;
};

constexpr std::uint64_t kSeeds = 16;
constexpr std::size_t kSteps = 2000;

TEST(ChainModelTest, RandomOperationsKeepBytesSizeAndMergesLikeTheModel) {
  chain_model_fixture fx;
  ASSERT_EQ(fx.error, "");
  chain_interpreter::coverage total;
  for (std::uint64_t seed = 1; seed <= kSeeds; ++seed) {
    seeded_pick pick(seed);
    chain_interpreter it(fx);
    for (std::size_t n = 0; n < kSteps && it.step(pick); ++n) {
    }
    ASSERT_TRUE(it.ok()) << "seed " << seed << ": " << it.failure() << "\nlast operations:\n"
                         << it.recent_ops();
    ASSERT_TRUE(it.finish()) << "seed " << seed << ": " << it.failure();
    total.memory_merges += it.covered().memory_merges;
    total.file_merges += it.covered().file_merges;
    total.cross_page_runs += it.covered().cross_page_runs;
    total.max_segments = std::max(total.max_segments, it.covered().max_segments);
  }
  // The operations must reach what they are meant to exercise.
  EXPECT_GT(total.memory_merges, 100u);
  EXPECT_GT(total.file_merges, 100u);
  EXPECT_GT(total.cross_page_runs, 10u);
  EXPECT_GE(total.max_segments, 40u) << "long enough for consume to compact the front";
}

TEST(ChainModelTest, EveryPageAndFileReferenceComesBackAfterRandomOperations) {
  chain_model_fixture fx;
  ASSERT_EQ(fx.error, "");
  {
    seeded_pick pick(99);
    chain_interpreter it(fx);
    for (std::size_t n = 0; n < kSteps && it.step(pick); ++n) {
    }
    ASSERT_TRUE(it.ok()) << it.failure() << "\nlast operations:\n" << it.recent_ops();
    std::size_t refs = 0;
    for (const page_ref& p : fx.pages)
      refs += p->use_count();
    ASSERT_GT(refs, fx.pages.size()) << "the chains hold pages when they are destroyed";
    ASSERT_TRUE(it.finish()) << it.failure();
  }
  for (const page_ref& p : fx.pages)
    EXPECT_EQ(p->use_count(), 1u);
  for (const auto& h : fx.handles)
    EXPECT_EQ(h.use_count(), 1);
  fx.pages.clear();
  const page_pool_stats s = fx.pool->stats();
  EXPECT_EQ(s.pages_in_use, 0u);
  EXPECT_EQ(s.pages_free, s.pages_total);
}

// The checker itself: a model that differs from the chain in bytes, size or segmentation is
// reported.
TEST(ChainModelTest, CheckerReportsEveryKindOfDisagreementWithTheModel) {
  chain_model_fixture fx;
  ASSERT_EQ(fx.error, "");
  chain c;
  chain_model m;
  const slice s(fx.pages[0], 10, 20);
  const file_range r(fx.handles[0], 100, 30);
  c.append(s.share(0, 10));
  c.append(s.share(10, 10));  // merges
  c.append(r);
  auto piece = [](const segment& seg) { return testing::piece_of(seg); };
  m.push_back(piece(segment(s.share(0, 10))), fx.page_bytes[0].substr(10, 10));
  m.push_back(piece(segment(s.share(10, 10))), fx.page_bytes[0].substr(20, 10));
  m.push_back(piece(segment(r)), fx.file_bytes[0].substr(100, 30));
  ASSERT_EQ(m.pieces.size(), 2u);
  EXPECT_EQ(check_chain(c, m, fx), "");

  chain_model wrong_byte = m;
  wrong_byte.bytes[25] ^= 1;
  EXPECT_NE(check_chain(c, wrong_byte, fx), "");

  chain_model longer = m;
  longer.bytes += "x";
  longer.pieces.back().len += 1;
  EXPECT_NE(check_chain(c, longer, fx), "");

  chain_model unmerged = m;  // same bytes, the slice as two pieces
  unmerged.pieces.front().len = 10;
  unmerged.pieces.insert(unmerged.pieces.begin() + 1, unmerged.pieces.front());
  unmerged.pieces[1].start += 10;
  EXPECT_NE(check_chain(c, unmerged, fx), "");

  chain_model other_handle = m;  // same bytes through file A's second handle
  other_handle.pieces.back().source = fx.handles[1].get();
  EXPECT_NE(check_chain(c, other_handle, fx), "");
}

// Found by the model: on a partly consumed chain, head_ + first wrapped for the largest
// indexes and iovecs() described a consumed slot (and the live segments after it).
TEST(ChainModelTest, IovecsFromPastTheLastSegmentIsEmptyEvenForTheLargestIndex) {
  chain_model_fixture fx;
  ASSERT_EQ(fx.error, "");
  chain c;
  c.append(slice(fx.pages[0], 0, 10));
  c.append(slice(fx.pages[2], 0, 10));
  c.append(slice(fx.pages[4], 0, 10));
  c.consume(10);  // the first slot is consumed, not yet reclaimed
  iovec iov[4];
  EXPECT_EQ(c.iovecs(iov, 0), 2u);
  EXPECT_EQ(c.iovecs(iov, 2), 0u);
  EXPECT_EQ(c.iovecs(iov, 3), 0u);
  EXPECT_EQ(c.iovecs(iov, SIZE_MAX), 0u);
  EXPECT_EQ(c.iovecs(iov, SIZE_MAX - 1), 0u);
}

}  // namespace
}  // namespace pagewire::fs
