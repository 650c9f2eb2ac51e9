// page_writer: ensure() makes the next n bytes safe from a pool that runs dry, align()
// leaves its gap out of the output, reserve_run()/commit_run() write across pages that lie
// back to back and still give one slice per page; take_into() keeps the destination's
// storage for the next output.

#include <cstring>

#include <pagewire/filters/page_writer.h>

#include "tests/filters/helpers.h"

namespace pwtest {
namespace {

// All of a 2 MiB pool but `left` pages held elsewhere.
struct tight_pool {
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{2} << 20}};
  std::vector<fs::page_ref> held;
  explicit tight_pool(std::size_t left) {
    while (fs::page_ref p = pool.allocate())
      held.push_back(std::move(p));
    held.resize(held.size() - left);
  }
};

void fill(filters::page_writer& w, std::size_t n, std::byte v) {
  while (n > 0) {
    auto s = w.reserve();
    ASSERT_FALSE(s.empty());
    const std::size_t k = std::min(n, s.size());
    std::memset(s.data(), std::to_integer<int>(v), k);
    w.commit(k);
    n -= k;
  }
}

TEST(PageWriter, EnsuredBytesAreWritableAfterThePoolRanDry) {
  tight_pool t(3);
  filters::page_writer w(t.pool);
  EXPECT_FALSE(w.ensure(4 * fs::kPageSize)) << "four pages, three left";
  ASSERT_TRUE(w.ensure(3 * fs::kPageSize));
  EXPECT_FALSE(t.pool.allocate()) << "ensure() took them";
  fill(w, 3 * fs::kPageSize, std::byte{7});
  EXPECT_EQ(w.pending(), 3 * fs::kPageSize);
  EXPECT_TRUE(w.reserve().empty()) << "nothing beyond what was ensured";
}

TEST(PageWriter, AlignLeavesTheGapOutOfTheOutput) {
  fs::page_pool pool;
  filters::page_writer w(pool);
  ASSERT_TRUE(w.ensure(2 * fs::kPageSize));
  auto offset = [](const fs::slice& s) {
    return reinterpret_cast<std::uintptr_t>(s.data()) % fs::kPageSize;
  };
  fill(w, 10, std::byte{1});
  w.align(64, 59);  // a 49-byte gap
  fill(w, 5, std::byte{2});
  fs::chain c = w.take();
  ASSERT_EQ(c.segments().size(), 2u);
  EXPECT_EQ(c.size(), 15u);
  EXPECT_EQ(offset(std::get<fs::slice>(c.segments()[1])), 59u);
  // 4 bytes short of the page's end: the gap is those and 59 bytes of the next page.
  fill(w, fs::kPageSize - 64 - 4, std::byte{3});
  w.align(64, 59);
  fill(w, 1, std::byte{4});
  c = w.take();
  ASSERT_EQ(c.segments().size(), 2u);
  EXPECT_EQ(c.size(), fs::kPageSize - 64 - 4 + 1);
  const fs::slice& last = std::get<fs::slice>(c.segments()[1]);
  EXPECT_EQ(offset(last), 59u);
  EXPECT_EQ(last.bytes()[0], std::byte{4});
}

TEST(PageWriter, RunSpansAdjacentPagesAndCommitsOneSlicePerPage) {
  fs::page_pool pool;  // a fresh arena hands out pages upwards, back to back
  filters::page_writer w(pool);
  ASSERT_TRUE(w.ensure(10000));
  auto run = w.reserve_run(10000);
  ASSERT_EQ(run.size(), 10000u);
  for (std::size_t i = 0; i < run.size(); ++i)
    run[i] = static_cast<std::byte>(i % 251);
  w.commit_run(10000);
  const fs::chain c = w.take();
  ASSERT_EQ(c.size(), 10000u);
  EXPECT_EQ(c.segments().size(), 3u);  // 4096 + 4096 + 1808
  const auto bytes = to_bytes(c);
  for (std::size_t i = 0; i < bytes.size(); ++i)
    ASSERT_EQ(bytes[i], static_cast<std::byte>(i % 251)) << i;
}

TEST(PageWriter, TakeIntoHandsTheOutputOverAndKeepsTheDestinationsStorage) {
  fs::page_pool pool;
  filters::page_writer w(pool);
  static const char old[] = "old";
  fs::chain dst;
  dst.reserve(8);
  dst.append(fs::slice::from_static(old, 3));  // what dst held is dropped
  const fs::segment* storage = dst.segments().data();
  fill(w, 100, std::byte{1});
  w.take_into(dst);
  EXPECT_EQ(w.pending(), 0u);
  ASSERT_EQ(dst.size(), 100u);

  fill(w, 50, std::byte{2});  // on the same page, after the taken bytes
  fs::chain next;
  w.take_into(next);
  ASSERT_EQ(next.size(), 50u);
  EXPECT_EQ(next.segments().data(), storage) << "the writer filled the storage dst gave it";
  for (auto b : to_bytes(dst))
    ASSERT_EQ(b, std::byte{1});
  for (auto b : to_bytes(next))
    ASSERT_EQ(b, std::byte{2});
}

}  // namespace
}  // namespace pwtest
