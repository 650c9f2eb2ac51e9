// head_arena: heads share pool pages, and a reserve of its own keeps heads going out while
// bulk users (on-the-fly compression) hold every page of the pool.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/apps/sendfile_server/head_arena.h>
#include <pagewire/fs/page_pool.h>

namespace pagewire::sendfile_server {
namespace {

fs::page_pool_options one_arena() {
  fs::page_pool_options o;
  o.arena_bytes = std::size_t{2} << 20;
  o.max_bytes = o.arena_bytes;  // 512 pages, no more
  o.try_huge_pages = false;
  return o;
}

// Every page the pool still has, held the way a compression holds its body.
std::vector<fs::page_ref> take_all(fs::page_pool& pool) {
  std::vector<fs::page_ref> held;
  for (fs::page_ref p; (p = pool.allocate());)
    held.push_back(std::move(p));
  return held;
}

// Writes one head of 1 KiB (the size responder reserves for one) into `out`.
bool write_head(head_arena& arena, fs::chain& out) {
  const std::string head(1024, 'h');
  return arena.append(out, head);
}

TEST(HeadArena, WritesHeadsFromItsReserveWhileThePoolIsExhausted) {
  fs::page_pool pool(one_arena());
  head_arena arena(pool);
  const auto bulk = take_all(pool);
  ASSERT_FALSE(pool.allocate());
  fs::chain out;
  // The reserve's pages hold four 1 KiB heads each.
  const std::size_t heads = head_arena::kReservePages * (fs::kPageSize / 1024);
  for (std::size_t i = 0; i < heads; ++i)
    ASSERT_TRUE(write_head(arena, out)) << "head " << i << " of " << heads;
  EXPECT_EQ(out.size(), heads * 1024);
  EXPECT_FALSE(write_head(arena, out)) << "pool and reserve are both exhausted";
}

TEST(HeadArena, RefillsItsReserveOnceThePoolHasPagesAgain) {
  fs::page_pool pool(one_arena());
  head_arena arena(pool);
  auto bulk = take_all(pool);
  {
    fs::chain sent;  // heads that go out (and are released) while the pool is exhausted
    for (std::size_t i = 0; i < head_arena::kReservePages * 4; ++i)
      ASSERT_TRUE(write_head(arena, sent));
  }
  bulk.clear();  // the compression ends: its pages go back
  {
    fs::chain in_flight;  // a head from the pool: the arena tops its reserve up with it
    ASSERT_TRUE(write_head(arena, in_flight));
    const auto again = take_all(pool);  // exhausted once more
    std::size_t heads = 0;
    while (write_head(arena, in_flight))
      ++heads;
    // What was left of the current page, then the whole reserve again.
    EXPECT_GE(heads, head_arena::kReservePages * 4);
  }
}

TEST(HeadArena, AnArenaMadeFromAnExhaustedPoolFillsItsReserveLater) {
  fs::page_pool pool(one_arena());
  auto bulk = take_all(pool);
  head_arena arena(pool);  // no page for its reserve yet
  fs::chain out;
  EXPECT_FALSE(write_head(arena, out));
  bulk.clear();
  ASSERT_TRUE(write_head(arena, out));
  const auto again = take_all(pool);
  std::size_t heads = 0;
  while (write_head(arena, out))
    ++heads;
  EXPECT_GE(heads, head_arena::kReservePages * 4);
}

}  // namespace
}  // namespace pagewire::sendfile_server
