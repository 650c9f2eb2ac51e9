// Its own binary: it lowers RLIMIT_MEMLOCK and drops CAP_IPC_LOCK for the whole process.
#include <unistd.h>

#include <gtest/gtest.h>

#include <pagewire/fs/page_cache.h>
#include <pagewire/runtime/context.h>

#include "tests/fs/memlock_limit.h"
#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

TEST(PageCacheRegistration, RefusedRegistrationStillServesCorrectBytes) {
  ASSERT_TRUE(testing::limit_memlock(testing::kRingRoom));

  runtime::context_options co;
  co.read_environment = false;
  runtime::context ctx(co);
  if (!ctx.uses_io_uring()) GTEST_SKIP() << "no io_uring: nothing to register";
  page_pool_options po;
  po.initial_arenas = 1;
  page_pool pool(po);
  std::error_code ec = pool.register_buffers(*ctx.native_ring());
  ASSERT_TRUE(ec) << "2 MiB registered under a 1 MiB memlock limit";

  std::string path = testing::temp_path("refused");
  auto data = testing::random_bytes(40 * kPageSize + 3, 77);
  ASSERT_TRUE(testing::write_file(path, data));
  auto f = file::open(path.c_str(), ec);
  ASSERT_TRUE(f);
  {
    page_cache cache(ctx, pool);
    std::string got;
    bool done = false;
    cache.async_read(f, 0, data.size(), [&](std::error_code e, chain c) {
      EXPECT_FALSE(e);
      for (const segment& s : c.segments()) {
        const slice& m = std::get<slice>(s);
        got.append(reinterpret_cast<const char*>(m.data()), m.size());
      }
      done = true;
    });
    ctx.run();
    ASSERT_TRUE(done);
    EXPECT_EQ(got, std::string(data.begin(), data.end()));
    EXPECT_EQ(cache.stats().fixed_reads, 0u);
    EXPECT_GT(cache.stats().reads_issued, 0u);
  }
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace pagewire::fs
