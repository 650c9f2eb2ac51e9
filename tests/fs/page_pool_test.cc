#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <liburing.h>

#include <pagewire/fs/page_pool.h>
#include <pagewire/runtime/ring.h>

#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

TEST(PagePool, PagesAre4KiBAlignedAndDistinct) {
  page_pool pool;
  page_ref a = pool.allocate();
  page_ref b = pool.allocate();
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % kPageSize, 0u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % kPageSize, 0u);
  EXPECT_NE(a.data(), b.data());
  std::memset(a.data(), 1, kPageSize);
  std::memset(b.data(), 2, kPageSize);
  EXPECT_EQ(a->use_count(), 1u);
  EXPECT_EQ(&a->pool(), &pool);
}

TEST(PagePool, CopiesShareAndLastReleaseReturnsThePage) {
  page_pool pool;
  page_ref a = pool.allocate();
  page_ref b = a;
  EXPECT_EQ(a->use_count(), 2u);
  page_ref c = std::move(b);
  EXPECT_FALSE(b);
  EXPECT_EQ(a->use_count(), 2u);
  a.reset();
  EXPECT_EQ(pool.stats().pages_in_use, 1u);
  c.reset();
  page_pool_stats s = pool.stats();
  EXPECT_EQ(s.pages_in_use, 0u);
  EXPECT_EQ(s.pages_free, s.pages_total);
  EXPECT_EQ(s.allocations, 1u);
}

TEST(PagePool, GrowsByArenasAndRefusesBeyondMaxBytes) {
  page_pool_options o;
  o.max_bytes = 2 << 20;  // one arena, 512 pages
  page_pool pool(o);
  std::vector<page_ref> held;
  for (int i = 0; i < 512; ++i) {
    held.push_back(pool.allocate());
    ASSERT_TRUE(held.back());
  }
  EXPECT_FALSE(pool.allocate());
  page_pool_stats s = pool.stats();
  EXPECT_EQ(s.arenas, 1u);
  EXPECT_EQ(s.pages_total, 512u);
  EXPECT_EQ(s.pages_free, 0u);
  EXPECT_EQ(s.allocation_failures, 1u);
  held.pop_back();
  EXPECT_TRUE(pool.allocate());
}

TEST(PagePool, InitialArenasAreMappedUpFront) {
  page_pool_options o;
  o.initial_arenas = 2;
  page_pool pool(o);
  page_pool_stats s = pool.stats();
  EXPECT_EQ(s.arenas, 2u);
  EXPECT_EQ(s.bytes_mapped, std::size_t{4} << 20);
  EXPECT_EQ(s.pages_free, 1024u);
  EXPECT_LE(s.huge_arenas, 2u);
}

TEST(PagePool, ConcurrentAllocateAndReleaseKeepExactAccounting) {
  page_pool pool;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool] {
      std::vector<page_ref> mine;
      for (int i = 0; i < 2000; ++i) {
        mine.push_back(pool.allocate());
        if (i % 3 == 0) {
          page_ref shared = mine.front();
          mine.erase(mine.begin());
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  page_pool_stats s = pool.stats();
  EXPECT_EQ(s.pages_in_use, 0u);
  EXPECT_EQ(s.allocations, 8000u);
}

// A ring that this thread submits to through liburing directly (enabled at once). Declared
// after the pool, it exits (its buffer table with it) before the pool goes.
std::unique_ptr<runtime::ring> make_ring() {
  runtime::ring_options o;
  o.entries = 8;
  o.enable_lazily = false;
  std::error_code ec;
  return runtime::ring::create(o, ec);
}

// READ_FIXED of one page from `fd` into `p` on `ring`: the CQE's result.
int read_fixed(io_uring& ring, int fd, const page_ref& p) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_read_fixed(sqe, fd, p.data(), kPageSize, 0, p->buffer_index());
  if (io_uring_submit(&ring) != 1) return -1;
  io_uring_cqe* cqe = nullptr;
  if (io_uring_wait_cqe(&ring, &cqe) != 0) return -1;
  int res = cqe->res;
  io_uring_cqe_seen(&ring, cqe);
  return res;
}

TEST(PagePool, RegisteredArenaServesReadFixed) {
  page_pool_options o;
  o.initial_arenas = 1;
  page_pool pool(o);
  auto r = make_ring();  // declared after the pool: it exits first
  if (!r) GTEST_SKIP() << "io_uring unavailable";
  std::error_code ec = pool.register_buffers(*r);
  if (ec) GTEST_SKIP() << "registration refused here: " << ec.message();
  EXPECT_TRUE(pool.registered_on(*r));
  page_ref p = pool.allocate();
  EXPECT_EQ(p->buffer_index(), 0);
  EXPECT_EQ(pool.stats().registered_arenas, 1u);

  std::string path = testing::temp_path("fixed");
  auto data = testing::random_bytes(kPageSize, 7);
  ASSERT_TRUE(testing::write_file(path, data));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_fixed(r->native(), fd, p), static_cast<int>(kPageSize));
  EXPECT_EQ(std::memcmp(p.data(), data.data(), kPageSize), 0);
  ::close(fd);
  ::unlink(path.c_str());
}

// A ring created after a registered one exited often gets its address (and its fd). It has no
// table: taken for registered, it would send fixed-buffer I/O to an empty table (EFAULT) or to
// another pool's.
TEST(PagePool, RingCreatedWhereARegisteredOneWasIsNotRegisteredUntilItRegisters) {
  page_pool_options o;
  o.initial_arenas = 1;
  o.try_huge_pages = false;
  page_pool pool(o);
  page_ref p = pool.allocate();
  auto first = make_ring();
  if (!first) GTEST_SKIP() << "io_uring unavailable";
  std::error_code ec = pool.register_buffers(*first);
  if (ec) GTEST_SKIP() << "registration refused here: " << ec.message();
  const void* where = &first->native();
  const int fd_was = first->fd();
  first.reset();  // exits: its buffer table goes with it
  auto second = make_ring();
  ASSERT_TRUE(second);
  SCOPED_TRACE(&second->native() == where ? "the new ring has the old one's address"
                                          : "the new ring is elsewhere");
  SCOPED_TRACE(second->fd() == fd_was ? "and its fd" : "not its fd");
  EXPECT_FALSE(pool.registered_on(*second));

  EXPECT_FALSE(pool.register_buffers(*second));
  EXPECT_TRUE(pool.registered_on(*second));
  std::string path = testing::temp_path("fixed3");
  auto data = testing::random_bytes(kPageSize, 11);
  ASSERT_TRUE(testing::write_file(path, data));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(read_fixed(second->native(), fd, p), static_cast<int>(kPageSize));
  EXPECT_EQ(std::memcmp(p.data(), data.data(), kPageSize), 0);
  EXPECT_FALSE(pool.register_buffers(*second));  // again: nothing to do
  EXPECT_EQ(read_fixed(second->native(), fd, p), static_cast<int>(kPageSize));
  ::close(fd);
  ::unlink(path.c_str());
}

// A ring holds one fixed-buffer table: a second pool is refused (EBUSY) and does not count the
// ring as its own, so its pages never claim an index there.
TEST(PagePool, RingHoldingAnotherPoolsTableIsNotRegisteredForThisPool) {
  page_pool_options o;
  o.initial_arenas = 1;
  o.try_huge_pages = false;
  page_pool mine(o), other(o);
  auto r = make_ring();
  if (!r) GTEST_SKIP() << "io_uring unavailable";
  std::error_code ec = other.register_buffers(*r);
  if (ec) GTEST_SKIP() << "registration refused here: " << ec.message();
  ec = mine.register_buffers(*r);
  EXPECT_EQ(ec, std::errc::device_or_resource_busy) << ec.message();
  EXPECT_FALSE(mine.registered_on(*r));
  EXPECT_TRUE(other.registered_on(*r));
  EXPECT_EQ(mine.stats().registered_arenas, 0u);
}

TEST(PagePool, ArenaMappedAfterTheFirstRegistrationStaysUnregisteredOnEveryRing) {
  page_pool_options o;
  o.initial_arenas = 1;
  o.try_huge_pages = false;
  page_pool pool(o);
  std::vector<page_ref> held;
  auto a = make_ring(), b = make_ring();  // declared after the pool and the pages: exit first
  if (!a || !b) GTEST_SKIP() << "io_uring unavailable";
  std::error_code ec = pool.register_buffers(*a);
  if (ec) GTEST_SKIP() << "registration refused here: " << ec.message();
  for (int i = 0; i < 513; ++i)
    held.push_back(pool.allocate());  // the 513th page comes from a second arena
  ASSERT_EQ(pool.stats().arenas, 2u);
  const page_ref& early = held.front();
  const page_ref& late = held.back();
  EXPECT_EQ(late->buffer_index(), -1);
  ec = pool.register_buffers(*b);
  if (ec) GTEST_SKIP() << "second registration refused here: " << ec.message();
  EXPECT_TRUE(pool.registered_on(*a));
  EXPECT_TRUE(pool.registered_on(*b));
  EXPECT_EQ(early->buffer_index(), 0);
  EXPECT_EQ(late->buffer_index(), -1);  // ring a's table never got it
  EXPECT_EQ(pool.stats().registered_arenas, 1u);

  std::string path = testing::temp_path("fixed2");
  auto data = testing::random_bytes(kPageSize, 9);
  ASSERT_TRUE(testing::write_file(path, data));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  // Every page that claims an index serves READ_FIXED on both rings.
  for (const page_ref* p : {&early, &late}) {
    if ((*p)->buffer_index() < 0) continue;
    EXPECT_EQ(read_fixed(a->native(), fd, *p), static_cast<int>(kPageSize)) << "ring a";
    EXPECT_EQ(read_fixed(b->native(), fd, *p), static_cast<int>(kPageSize)) << "ring b";
  }
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace pagewire::fs
