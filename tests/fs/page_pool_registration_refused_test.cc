// Its own binary: it lowers RLIMIT_MEMLOCK and drops CAP_IPC_LOCK for the whole process.
#include <cstring>
#include <unistd.h>

#include <gtest/gtest.h>
#include <liburing.h>

#include <pagewire/fs/page_pool.h>
#include <pagewire/runtime/ring.h>

#include "tests/fs/memlock_limit.h"
#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

TEST(PagePoolRegistration, RefusedByLowMemlockLimitKeepsWorkingUnregistered) {
  ASSERT_TRUE(testing::limit_memlock(testing::kRingRoom));  // below one 2 MiB arena

  page_pool_options o;
  o.initial_arenas = 1;
  page_pool pool(o);
  runtime::ring_options ro;
  ro.entries = 8;
  ro.enable_lazily = false;  // this thread submits through liburing below
  std::error_code ec;
  auto r = runtime::ring::create(ro, ec);  // after the pool: it exits first
  if (!r) GTEST_SKIP() << "io_uring unavailable: " << ec.message();
  io_uring& ring = r->native();
  ec = pool.register_buffers(*r);
  ASSERT_TRUE(ec) << "registration of 2 MiB succeeded under a 1 MiB memlock limit";
  EXPECT_TRUE(ec == std::errc::not_enough_memory || ec == std::errc::operation_not_permitted)
      << ec.message();
  EXPECT_FALSE(pool.registered_on(*r));
  EXPECT_EQ(pool.stats().registered_arenas, 0u);

  // The pool still hands out pages, and a plain (unregistered) read fills one.
  page_ref p = pool.allocate();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->buffer_index(), -1);
  std::string path = testing::temp_path("unreg");
  auto data = testing::random_bytes(kPageSize, 9);
  ASSERT_TRUE(testing::write_file(path, data));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_read(sqe, fd, p.data(), kPageSize, 0);
  ASSERT_EQ(io_uring_submit(&ring), 1);
  io_uring_cqe* cqe = nullptr;
  ASSERT_EQ(io_uring_wait_cqe(&ring, &cqe), 0);
  EXPECT_EQ(cqe->res, static_cast<int>(kPageSize));
  io_uring_cqe_seen(&ring, cqe);
  EXPECT_EQ(std::memcmp(p.data(), data.data(), kPageSize), 0);
  ::close(fd);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace pagewire::fs
