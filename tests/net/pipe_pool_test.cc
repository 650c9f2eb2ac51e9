// pipe_pool sizing: a pipe the kernel will not enlarge to options::pipe_size is still handed
// out, counted in stats().undersized and logged once per process; a size the kernel grants
// is neither.
//
// The refusal is real: this thread drops CAP_SYS_RESOURCE and CAP_SYS_ADMIN from its
// effective set (capabilities are per thread) and asks for twice /proc/sys/fs/pipe-max-size,
// which F_SETPIPE_SZ refuses (EPERM) to a user without them.

#include <fstream>
#include <linux/capability.h>
#include <string>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/log.h>

namespace {

namespace net = pagewire::net;

std::vector<std::string> g_lines;
void keep_line(std::string_view line) {
  g_lines.emplace_back(line);
}

// This thread's capabilities, and a scope that drops two from its effective set.
struct thread_caps {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  bool get() { return ::syscall(SYS_capget, &hdr, data) == 0; }
  bool set() { return ::syscall(SYS_capset, &hdr, data) == 0; }
};

class without_resource_caps {
 public:
  without_resource_caps() {
    ok_ = saved_.get();
    thread_caps dropped = saved_;
    for (int cap : {CAP_SYS_RESOURCE, CAP_SYS_ADMIN})
      dropped.data[cap / 32].effective &= ~(1u << (cap % 32));
    ok_ = ok_ && dropped.set();
  }
  ~without_resource_caps() {
    if (ok_) saved_.set();
  }
  bool ok() const { return ok_; }

 private:
  thread_caps saved_;
  bool ok_ = false;
};

std::size_t pipe_max_size() {
  std::ifstream f("/proc/sys/fs/pipe-max-size");
  std::size_t n = 0;
  f >> n;
  return n;
}

TEST(pipe_pool, a_pipe_the_kernel_will_not_enlarge_is_counted_and_logged_once) {
  const std::size_t max = pipe_max_size();
  ASSERT_GT(max, 0u);
  net::options opts;
  opts.pipe_size = 2 * max;
  ASSERT_FALSE(opts.validate()) << "a size options accept";
  pagewire::runtime::set_log_handler(&keep_line);
  {
    without_resource_caps scope;
    ASSERT_TRUE(scope.ok());
    net::pipe_pool pool(opts);
    std::error_code ec;
    net::pipe_handle a = pool.acquire(ec);
    ASSERT_FALSE(ec) << ec.message();
    net::pipe_handle b = pool.acquire(ec);  // a second new pipe, refused again
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_LT(a.capacity, opts.pipe_size);
    EXPECT_GE(a.capacity, 4096u) << "still a working pipe";
    EXPECT_EQ(pool.stats().created, 2u);
    EXPECT_EQ(pool.stats().undersized, 2u);
    pool.release(a, true);
    pool.release(b, true);
  }
  pagewire::runtime::set_log_handler(nullptr);
  ASSERT_EQ(g_lines.size(), 1u) << "once per process, however many pipes";
  EXPECT_NE(g_lines[0].find("pipes get"), std::string::npos) << g_lines[0];
  EXPECT_NE(g_lines[0].find(std::to_string(2 * max)), std::string::npos) << g_lines[0];
}

TEST(pipe_pool, a_size_the_kernel_grants_is_not_undersized) {
  net::options opts;
  opts.pipe_size = 16 * 1024;  // below the default pipe size: F_SETPIPE_SZ shrinks it
  opts.splice_chunk = 16 * 1024;
  ASSERT_FALSE(opts.validate());
  net::pipe_pool pool(opts);
  std::error_code ec;
  net::pipe_handle p = pool.acquire(ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(p.capacity, opts.pipe_size);
  EXPECT_EQ(pool.stats().undersized, 0u);
  pool.release(p, true);
}

}  // namespace
