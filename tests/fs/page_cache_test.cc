#include <cstring>
#include <fcntl.h>
#include <random>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <pagewire/fs/open_file_cache.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/fs/stats.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>

#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

std::string bytes_of(const chain& c) {
  std::string out;
  for (const segment& s : c.segments()) {
    const slice& m = std::get<slice>(s);
    out.append(reinterpret_cast<const char*>(m.data()), m.size());
  }
  return out;
}

std::string bytes_of(const slice& s) {
  return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}

runtime::context_options backend(bool fallback) {
  runtime::context_options o;
  o.read_environment = false;
  o.backend = fallback ? runtime::backend_kind::fallback : runtime::backend_kind::automatic;
  return o;
}

// In place, same size, same inode: only the timestamps tell. Pins a distinct mtime so the test
// does not depend on timestamp granularity.
bool rewrite_in_place(const std::string& path, const std::vector<char>& bytes,
                      std::int64_t old_mtime_ns) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size());
  timespec times[2] = {{0, UTIME_OMIT}, {old_mtime_ns / 1000000000 + 1, 0}};
  ok = ok && ::futimens(fd, times) == 0;
  return ::close(fd) == 0 && ok;
}

class PageCacheTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { ctx_ = std::make_unique<runtime::context>(backend(GetParam())); }
  void TearDown() override {
    for (auto& p : paths_)
      ::unlink(p.c_str());
  }

  std::shared_ptr<const file> make_file(std::size_t size, std::uint32_t seed,
                                        std::vector<char>* data = nullptr) {
    std::string path = testing::temp_path("pc");
    auto bytes = testing::random_bytes(size, seed);
    EXPECT_TRUE(testing::write_file(path, bytes));
    paths_.push_back(path);
    if (data) *data = std::move(bytes);
    std::error_code ec;
    auto f = file::open(path.c_str(), ec);
    EXPECT_TRUE(f) << ec.message();
    return f;
  }

  // An async_read's outcome, filled in by its handler.
  struct read_result {
    bool done = false;
    std::error_code ec;
    chain bytes;
  };
  void start_read(page_cache& cache, std::shared_ptr<const file> f, std::uint64_t off,
                  std::uint64_t len, read_result& out) {
    cache.async_read(std::move(f), off, len, [&out](std::error_code e, chain c) {
      out.done = true;
      out.ec = e;
      out.bytes = std::move(c);
    });
  }

  // Reads through the cache and runs the loop until the handler ran.
  chain read(page_cache& cache, std::shared_ptr<const file> f, std::uint64_t off, std::uint64_t len,
             std::error_code* ec_out = nullptr) {
    read_result r;
    start_read(cache, std::move(f), off, len, r);
    ctx_->run();
    ctx_->restart();
    EXPECT_TRUE(r.done);
    if (ec_out) {
      *ec_out = r.ec;
    } else {
      EXPECT_FALSE(r.ec) << r.ec.message();
    }
    return std::move(r.bytes);
  }

  slice read_page(page_cache& cache, std::shared_ptr<const file> f, std::uint64_t index) {
    bool done = false;
    slice result;
    cache.async_read_page(std::move(f), index, [&](std::error_code e, slice s) {
      EXPECT_FALSE(e) << e.message();
      done = true;
      result = std::move(s);
    });
    ctx_->run();
    ctx_->restart();
    EXPECT_TRUE(done);
    return result;
  }

  // read() of a file that shrank since `f` was taken, with at most 1,000 handlers run: a read
  // that never completes (re-reading a page forever) fails the test instead of hanging it,
  // and the file at `path` gets `full_size` back so the re-reads end and the cache can go.
  chain read_shrunk(page_cache& cache, std::shared_ptr<const file> f, std::uint64_t off,
                    std::uint64_t len, const std::string& path, std::uint64_t full_size) {
    read_result r;
    start_read(cache, std::move(f), off, len, r);
    for (int i = 0; i < 1000 && !r.done; ++i)
      ctx_->run_one();
    if (!r.done) {
      ADD_FAILURE() << "the read never completed: " << cache.stats().reads_issued << " reads";
      EXPECT_EQ(::truncate(path.c_str(), static_cast<off_t>(full_size)), 0);
      ctx_->run();
      ctx_->restart();
      return {};
    }
    EXPECT_FALSE(r.ec) << r.ec.message();
    return std::move(r.bytes);
  }

  page_pool pool_;
  std::unique_ptr<runtime::context> ctx_;
  std::vector<std::string> paths_;
};

TEST_P(PageCacheTest, RandomReadsOverA64MiBFileEqualPread) {
  std::vector<char> data;
  auto f = make_file(64 << 20, 64, &data);
  page_cache_options o;
  o.budget_pages = 1024;  // 4 MiB: the file does not fit, eviction runs throughout
  page_cache cache(*ctx_, pool_, o);
  std::mt19937_64 rng(2024);
  std::uint64_t copied = stats::copied_bytes();
  for (int i = 0; i < 600; ++i) {
    std::uint64_t off = rng() % data.size();
    std::uint64_t len = 1 + rng() % (64 * 1024);
    chain c = read(cache, f, off, len);
    std::uint64_t expect = std::min<std::uint64_t>(len, data.size() - off);
    ASSERT_EQ(c.size(), expect);
    ASSERT_EQ(bytes_of(c), std::string(data.data() + off, expect)) << "offset " << off;
  }
  // A sequential sweep too (read-ahead path).
  for (std::uint64_t off = 0; off < data.size(); off += 1 << 20) {
    chain c = read(cache, f, off, 1 << 20);
    ASSERT_EQ(bytes_of(c), std::string(data.data() + off, 1 << 20)) << "offset " << off;
  }
  page_cache_stats s = cache.stats();
  EXPECT_GT(s.misses, 0u);
  EXPECT_GT(s.evictions, 0u);
  EXPECT_GT(s.readahead_pages, 0u);
  EXPECT_LE(s.resident_pages, o.budget_pages);
  EXPECT_EQ(s.reads_in_flight, 0u);
  EXPECT_EQ(pool_.stats().pages_in_use, s.resident_pages);
  EXPECT_EQ(stats::copied_bytes(), copied);  // the cache never copies in user space
}

TEST_P(PageCacheTest, SecondReadIsAHitOnTheSamePage) {
  auto f = make_file(3 * kPageSize, 1);
  page_cache cache(*ctx_, pool_);
  slice a = read_page(cache, f, 1);
  slice b = read_page(cache, f, 1);
  EXPECT_EQ(a.data(), b.data());
  slice c = cache.lookup(*f, 1);
  EXPECT_EQ(c.data(), a.data());
  page_cache_stats s = cache.stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 2u);
}

TEST_P(PageCacheTest, LastPageIsShortAndPagesPastTheEndAreEmpty) {
  std::vector<char> data;
  auto f = make_file(2 * kPageSize + 100, 3, &data);
  page_cache cache(*ctx_, pool_);
  slice last = read_page(cache, f, 2);
  EXPECT_EQ(bytes_of(last), std::string(data.data() + 2 * kPageSize, 100));
  EXPECT_TRUE(read_page(cache, f, 3).empty());
  EXPECT_EQ(read(cache, f, 2 * kPageSize + 50, 1000).size(), 50u);
  EXPECT_TRUE(read(cache, f, 5 * kPageSize, 10).empty());
}

TEST_P(PageCacheTest, EvictionUnderA16PageBudgetNeverFreesAPinnedPage) {
  std::vector<char> data;
  auto f = make_file(128 * kPageSize, 16, &data);
  page_cache_options o;
  o.budget_pages = 16;
  o.readahead_max_pages = 0;
  page_cache cache(*ctx_, pool_, o);
  std::vector<slice> pinned;
  for (std::uint64_t i = 0; i < 64; ++i)
    pinned.push_back(read_page(cache, f, i));
  page_cache_stats s = cache.stats();
  EXPECT_EQ(s.evictions, 0u);  // every page is held: nothing may go
  EXPECT_EQ(s.resident_pages, 64u);
  EXPECT_EQ(pool_.stats().pages_in_use, 64u);
  for (std::uint64_t i = 0; i < 64; ++i) {
    ASSERT_EQ(bytes_of(pinned[i]), std::string(data.data() + i * kPageSize, kPageSize));
  }
  pinned.clear();
  EXPECT_EQ(cache.trim(), 48u);
  EXPECT_EQ(cache.stats().resident_pages, 16u);
  EXPECT_EQ(pool_.stats().pages_in_use, 16u);
  for (std::uint64_t i = 64; i < 128; ++i) {
    slice s2 = read_page(cache, f, i);
    ASSERT_EQ(bytes_of(s2), std::string(data.data() + i * kPageSize, kPageSize));
    s2 = slice();
    ASSERT_LE(cache.stats().resident_pages, 16u);
  }
  EXPECT_EQ(cache.stats().evictions, 48u + 64u);
  EXPECT_EQ(pool_.stats().pages_in_use, cache.stats().resident_pages);
  EXPECT_EQ(bytes_of(read_page(cache, f, 0)), std::string(data.data(), kPageSize));
}

TEST_P(PageCacheTest, RewrittenFileIsReReadNotServedStale) {
  std::vector<char> v1;
  auto f1 = make_file(5 * kPageSize, 100, &v1);
  const std::string& path = paths_.back();
  page_cache cache(*ctx_, pool_);
  chain old_bytes = read(cache, f1, 0, v1.size());
  ASSERT_EQ(bytes_of(old_bytes), std::string(v1.begin(), v1.end()));

  // Rewrite in place, same size, then give it a distinct mtime: what a later write does on a
  // clock that ticked (pinned explicitly so the test does not depend on timestamp granularity).
  auto v2 = testing::random_bytes(v1.size(), 200);
  ASSERT_TRUE(rewrite_in_place(path, v2, f1->version().mtime_ns));
  std::error_code ec;
  auto f2 = file::open(path.c_str(), ec);
  ASSERT_TRUE(f2);
  ASSERT_FALSE(f2->version() == f1->version());

  EXPECT_TRUE(cache.lookup(*f2, 0).empty());  // never the old page under the new version
  chain fresh = read(cache, f2, 0, v2.size());
  EXPECT_EQ(bytes_of(fresh), std::string(v2.begin(), v2.end()));
  EXPECT_GE(cache.stats().stale_dropped, 5u);
  // Slices taken before the change still hold the bytes they had.
  EXPECT_EQ(bytes_of(old_bytes), std::string(v1.begin(), v1.end()));

  // A rewrite that changes the size, through open_file_cache revalidation.
  auto v3 = testing::random_bytes(3 * kPageSize + 7, 300);
  ASSERT_TRUE(testing::write_file(path, v3));
  std::string dir = path.substr(0, path.rfind('/'));
  open_file_cache_options fo;
  fo.revalidate_after = std::chrono::nanoseconds(0);
  auto files = open_file_cache::create(dir.c_str(), fo, ec);
  ASSERT_TRUE(files);
  auto f3 = files->open(path.substr(path.rfind('/')), ec);
  ASSERT_TRUE(f3) << ec.message();
  EXPECT_EQ(bytes_of(read(cache, f3, 0, 1 << 20)), std::string(v3.begin(), v3.end()));
}

TEST_P(PageCacheTest, ChangedInPlaceIsReReadEvenThroughAnOldFileSnapshot) {
  std::vector<char> v1;
  auto f = make_file(3 * kPageSize, 41, &v1);
  page_cache_options o;
  o.revalidate_after = std::chrono::nanoseconds(0);  // fstat on every async read
  page_cache cache(*ctx_, pool_, o);
  EXPECT_EQ(bytes_of(read(cache, f, 0, v1.size())), std::string(v1.begin(), v1.end()));
  auto v2 = testing::random_bytes(v1.size(), 42);
  ASSERT_TRUE(rewrite_in_place(paths_.back(), v2, f->version().mtime_ns));
  EXPECT_EQ(bytes_of(read(cache, f, 0, v2.size())), std::string(v2.begin(), v2.end()));
  EXPECT_EQ(bytes_of(read_page(cache, f, 1)), std::string(v2.data() + kPageSize, kPageSize));
  EXPECT_GE(cache.stats().stale_dropped, 3u);
}

TEST_P(PageCacheTest, TrustingTheSnapshotServesCachedPagesUntilANewFileIsPassed) {
  std::vector<char> v1;
  auto f = make_file(2 * kPageSize, 43, &v1);
  page_cache_options o;
  o.revalidate_after = std::chrono::nanoseconds::max();
  page_cache cache(*ctx_, pool_, o);
  EXPECT_EQ(bytes_of(read(cache, f, 0, v1.size())), std::string(v1.begin(), v1.end()));
  auto v2 = testing::random_bytes(v1.size(), 44);
  ASSERT_TRUE(rewrite_in_place(paths_.back(), v2, f->version().mtime_ns));
  EXPECT_EQ(bytes_of(read(cache, f, 0, v1.size())), std::string(v1.begin(), v1.end()));
  std::error_code ec;
  auto fresh = file::open(paths_.back().c_str(), ec);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(bytes_of(read(cache, fresh, 0, v2.size())), std::string(v2.begin(), v2.end()));
}

TEST_P(PageCacheTest, FileTruncatedMidPageAfterTheSnapshotReadsToItsRealEnd) {
  std::vector<char> data;
  auto f = make_file(2 * kPageSize, 61, &data);  // the snapshot says 8192 bytes
  const std::string& path = paths_.back();
  ASSERT_EQ(::truncate(path.c_str(), kPageSize + 904), 0);  // now 5000: ends inside page 1
  page_cache_options o;
  o.revalidate_after = std::chrono::nanoseconds::max();  // trust the (stale) snapshot
  o.readahead_max_pages = 0;
  page_cache cache(*ctx_, pool_, o);
  const chain got = read_shrunk(cache, f, 0, 2 * kPageSize, path, 2 * kPageSize);
  EXPECT_EQ(bytes_of(got), std::string(data.data(), kPageSize + 904));
  page_cache_stats s = cache.stats();
  EXPECT_EQ(s.reads_in_flight, 0u);
  EXPECT_EQ(s.reads_issued, 3u);  // page 0, page 1, and one resume of page 1 that got no further
  // The page at the real end holds what exists; pages past it read as empty.
  EXPECT_EQ(bytes_of(read_page(cache, f, 1)), std::string(data.data() + kPageSize, 904));
}

TEST_P(PageCacheTest, FileShrunkWithinTheRevalidationIntervalEndsTheReadAndIsStatedAgain) {
  std::vector<char> data;
  auto f = make_file(16 * kPageSize, 62, &data);
  const std::string& path = paths_.back();
  page_cache_options o;
  o.revalidate_after = std::chrono::hours(1);  // the version fstat found stays trusted
  page_cache cache(*ctx_, pool_, o);
  EXPECT_EQ(bytes_of(read(cache, f, 0, kPageSize)), std::string(data.data(), kPageSize));
  ASSERT_EQ(::truncate(path.c_str(), 30000), 0);  // shorter, ending inside page 7
  const chain got = read_shrunk(cache, f, 4 * kPageSize, 12 * kPageSize, path, 16 * kPageSize);
  EXPECT_EQ(bytes_of(got), std::string(data.data() + 4 * kPageSize, 30000 - 4 * kPageSize));
  EXPECT_EQ(cache.stats().reads_in_flight, 0u);
  // Written back to full length (as `cat new > file` does after truncating): the short read
  // made the cache fstat again, so the new bytes are read, not the short pages it cached.
  auto v2 = testing::random_bytes(data.size(), 63);
  ASSERT_TRUE(rewrite_in_place(path, v2, f->version().mtime_ns));
  EXPECT_EQ(bytes_of(read(cache, f, 0, v2.size())), std::string(v2.begin(), v2.end()));
}

TEST_P(PageCacheTest, PageCachedBeforeTheFileShrankIsNotAppendedAfterTheShortPage) {
  std::vector<char> data;
  auto f = make_file(2 * kPageSize, 64, &data);
  const std::string& path = paths_.back();
  page_cache_options o;
  o.revalidate_after = std::chrono::nanoseconds::max();  // trust the snapshot: 8192 bytes
  o.readahead_max_pages = 0;
  page_cache cache(*ctx_, pool_, o);
  // Page 1 is cached whole, then the file shrinks to 100 bytes: page 0, read now, is short.
  EXPECT_EQ(bytes_of(read_page(cache, f, 1)), std::string(data.data() + kPageSize, kPageSize));
  ASSERT_EQ(::truncate(path.c_str(), 100), 0);
  const chain got = read_shrunk(cache, f, 0, 2 * kPageSize, path, 2 * kPageSize);
  // The chain ends at the short page: page 1's bytes after it would sit at file offset 100.
  EXPECT_EQ(got.size(), 100u);
  EXPECT_TRUE(bytes_of(got).substr(0, 100) == std::string(data.data(), 100));
  EXPECT_EQ(cache.stats().reads_in_flight, 0u);
}

TEST_P(PageCacheTest, EightConcurrentReadersOfOneMissingPageIssueOneRead) {
  std::vector<char> data;
  auto f = make_file(4 * kPageSize, 8, &data);
  page_cache_options o;
  o.readahead_max_pages = 0;
  page_cache cache(*ctx_, pool_, o);
  std::vector<slice> got(8);
  int done = 0;
  for (int r = 0; r < 8; ++r) {
    cache.async_read_page(f, 2, [&, r](std::error_code ec, slice s) {
      EXPECT_FALSE(ec);
      got[r] = std::move(s);
      ++done;
    });
  }
  EXPECT_EQ(cache.stats().reads_in_flight, 1u);
  ctx_->run();
  EXPECT_EQ(done, 8);
  page_cache_stats s = cache.stats();
  EXPECT_EQ(s.reads_issued, 1u);
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.coalesced, 7u);
  EXPECT_EQ(s.bytes_read, kPageSize);
  for (const slice& g : got) {
    EXPECT_EQ(g.data(), got[0].data());
    EXPECT_EQ(bytes_of(g), std::string(data.data() + 2 * kPageSize, kPageSize));
  }
}

TEST_P(PageCacheTest, SequentialAccessReadsAhead) {
  auto f = make_file(256 * kPageSize, 5);
  page_cache cache(*ctx_, pool_);
  for (std::uint64_t i = 0; i < 64; ++i)
    read_page(cache, f, i);
  page_cache_stats s = cache.stats();
  EXPECT_GT(s.readahead_pages, 32u);
  EXPECT_LT(s.reads_issued, 16u);  // far fewer reads than pages
  EXPECT_GT(s.hits + s.coalesced, 48u);
}

TEST_P(PageCacheTest, ReadErrorReachesEveryWaiterAndLeavesNothingCached) {
  std::string path = testing::temp_path("wronly");
  ASSERT_TRUE(testing::write_file(path, testing::random_bytes(kPageSize, 1)));
  paths_.push_back(path);
  std::error_code ec;
  auto f = file::adopt(::open(path.c_str(), O_WRONLY | O_CLOEXEC), ec);  // reads fail: EBADF
  ASSERT_TRUE(f);
  page_cache cache(*ctx_, pool_);
  read(cache, f, 0, 100, &ec);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  EXPECT_EQ(cache.stats().read_errors, 1u);
  EXPECT_EQ(cache.stats().resident_pages, 0u);
  EXPECT_EQ(pool_.stats().pages_in_use, 0u);
}

TEST_P(PageCacheTest, RegisteredPoolReadsWithReadFixed) {
  if (!ctx_->uses_io_uring()) GTEST_SKIP() << "fixed buffers need io_uring";
  page_pool_options po;
  po.initial_arenas = 1;
  page_pool pool(po);
  std::error_code ec = pool.register_buffers(*ctx_->native_ring());
  if (ec) GTEST_SKIP() << "registration refused here: " << ec.message();
  std::vector<char> data;
  auto f = make_file(8 * kPageSize, 11, &data);
  {
    page_cache cache(*ctx_, pool);
    EXPECT_EQ(bytes_of(read(cache, f, 0, data.size())), std::string(data.begin(), data.end()));
    EXPECT_GT(cache.stats().fixed_reads, 0u);
  }
  ctx_.reset();  // unregisters (the ring goes) before the pool does
}

TEST_P(PageCacheTest, SamePageIndexOfTwoFilesAreDistinctPages) {
  std::vector<char> a_bytes, b_bytes;
  auto a = make_file(2 * kPageSize, 31, &a_bytes);
  auto b = make_file(2 * kPageSize, 32, &b_bytes);
  page_cache cache(*ctx_, pool_);
  slice a1 = read_page(cache, a, 1);
  slice b1 = read_page(cache, b, 1);
  EXPECT_NE(a1.data(), b1.data());
  EXPECT_EQ(bytes_of(a1), std::string(a_bytes.data() + kPageSize, kPageSize));
  EXPECT_EQ(bytes_of(b1), std::string(b_bytes.data() + kPageSize, kPageSize));
  cache.invalidate(*a);  // a's page is still held by a1: it stays; b's is untouched
  EXPECT_EQ(cache.lookup(*b, 1).data(), b1.data());
  a1 = slice();
  cache.invalidate(*a);
  EXPECT_TRUE(cache.lookup(*a, 1).empty());
  EXPECT_EQ(cache.lookup(*b, 1).data(), b1.data());
}

TEST_P(PageCacheTest, ExhaustedPoolReportsENOMEM) {
  page_pool_options po;
  po.max_bytes = 2 << 20;
  page_pool small(po);
  std::vector<page_ref> hog;
  for (int i = 0; i < 512; ++i)
    hog.push_back(small.allocate());
  ASSERT_FALSE(small.allocate());
  auto f = make_file(kPageSize, 4);
  page_cache cache(*ctx_, small);
  std::error_code ec;
  read(cache, f, 0, 10, &ec);
  EXPECT_EQ(ec, std::errc::not_enough_memory);
  EXPECT_EQ(cache.stats().resident_pages, 0u);
  hog.clear();
  EXPECT_EQ(read(cache, f, 0, 10).size(), 10u);  // works again once pages come back
}

TEST_P(PageCacheTest, PoolExhaustedByTheCachesOwnIdlePagesEvictsOneForADemandedPage) {
  page_pool_options po;
  po.max_bytes = 2 << 20;  // 512 pages: fewer than the cache's budget
  page_pool small(po);
  std::vector<char> data;
  auto f = make_file(600 * kPageSize, 65, &data);
  page_cache_options o;
  o.budget_pages = 4096;
  o.readahead_max_pages = 0;
  page_cache cache(*ctx_, small, o);
  for (std::uint64_t i = 0; i < 512; ++i)
    ASSERT_EQ(read(cache, f, i * kPageSize, kPageSize).size(), kPageSize) << "page " << i;
  ASSERT_EQ(small.stats().pages_free, 0u);  // every page is the cache's, none held by anyone
  // Nothing holds those pages: the cache gives one back to the pool instead of failing.
  std::error_code ec;
  chain c = read(cache, f, 512 * kPageSize, kPageSize, &ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(bytes_of(c) == std::string(data.data() + 512 * kPageSize, kPageSize));
  EXPECT_EQ(cache.stats().evictions, 1u);
  EXPECT_EQ(small.stats().pages_in_use, cache.stats().resident_pages);
}

TEST_P(PageCacheTest, AwaitableTokenYieldsErrorAndSlice) {
  std::vector<char> data;
  auto f = make_file(2 * kPageSize, 21, &data);
  page_cache cache(*ctx_, pool_);
  std::string got;
  std::error_code got_ec = std::make_error_code(std::errc::interrupted);
  std::uint64_t chain_size = 0;
  asio::co_spawn(
      ctx_->get_executor(),
      [&]() -> asio::awaitable<void> {
        auto [ec, s] = co_await cache.async_read_page(f, 1, asio::as_tuple(asio::use_awaitable));
        got_ec = ec;
        got = bytes_of(s);
        auto [ec2, c] = co_await cache.async_read(f, 10, 5000, asio::as_tuple(asio::use_awaitable));
        chain_size = ec2 ? 0 : c.size();
      },
      asio::detached);
  ctx_->run();
  EXPECT_FALSE(got_ec);
  EXPECT_EQ(got, std::string(data.data() + kPageSize, kPageSize));
  EXPECT_EQ(chain_size, 5000u);
}

TEST_P(PageCacheTest, PendingCompletionIsReleasedWhenTheContextGoesFirst) {
  auto f = make_file(2 * kPageSize, 51);
  auto token = std::make_shared<int>(0);
  {
    auto ctx = std::make_unique<runtime::context>(backend(GetParam()));
    page_cache cache(*ctx, pool_);
    bool warmed = false;
    cache.async_read(f, 0, 2 * kPageSize, [&](std::error_code, chain) { warmed = true; });
    ctx->run();
    ASSERT_TRUE(warmed);
    // All hits: the completion is deferred to the loop, which never runs again.
    cache.async_read(f, 0, 100, [token](std::error_code, chain) { ++*token; });
    EXPECT_EQ(token.use_count(), 2);
    ctx.reset();  // drains or drops the deferred completion
  }
  EXPECT_EQ(token.use_count(), 1);  // the handler was run or destroyed, never leaked
  EXPECT_EQ(pool_.stats().pages_in_use, 0u);
}

INSTANTIATE_TEST_SUITE_P(Backend, PageCacheTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "io_uring"; });

}  // namespace
}  // namespace pagewire::fs
