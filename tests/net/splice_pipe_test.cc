#include <sys/socket.h>

#include <gtest/gtest.h>

#include <pagewire/fs/stats.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/splice_pipe.h>
#include <pagewire/runtime/context.h>

#include "tests/net/net_testing.h"

namespace pagewire::net {
namespace {

using namespace testing;

class recording_pipe : public splice_pipe {
 public:
  using splice_pipe::splice_pipe;
  bool done = false;
  std::error_code ec;
  std::uint64_t bytes = 0;

 protected:
  void on_complete(std::error_code e, std::uint64_t n) override {
    done = true;
    ec = e;
    bytes = n;
  }
};

/// Writes `data` into `fd` from a thread, then shuts the write side.
std::thread feeder(int fd, const std::vector<char>& data) {
  return std::thread([fd, &data] {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<std::size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);
  });
}

class splice_backends : public ::testing::TestWithParam<bool> {};

TEST_P(splice_backends, socket_to_socket_proxy_is_byte_exact) {
  runtime::context ctx(backend(GetParam()));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(5 * (1 << 20) + 17, 31);
  tcp_pair in = make_pair();   // feeder writes to in.b; the proxy reads in.a
  tcp_pair out = make_pair();  // the proxy writes out.a; the sink reads out.b
  std::thread f = feeder(in.b, data);
  sink s(out.b);
  const auto copied_before = fs::stats::copied_bytes();
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{in.a, -1}, endpoint{out.a, -1}, UINT64_MAX >> 1, false);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  f.join();
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());  // ended at the source's EOF
  EXPECT_EQ(s.bytes(), data.size());
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(fs::stats::copied_bytes() - copied_before, 0u);
  EXPECT_EQ(p.counters().splice_bytes, data.size());
}

TEST_P(splice_backends, socket_to_file_upload_is_byte_exact) {
  runtime::context ctx(backend(GetParam()));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * (1 << 20) + 5, 32);
  tcp_pair in = make_pair();
  const int fd = make_file({});
  ASSERT_GE(fd, 0);
  std::thread f = feeder(in.b, data);
  recording_pipe p(ctx, pool, opts);
  const std::int64_t at = (std::int64_t{4} << 30) + 3;  // a 64-bit file offset
  p.start(endpoint{in.a, -1}, endpoint{fd, at}, data.size(), false);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  f.join();
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());
  EXPECT_EQ(hash_of_file(fd, static_cast<std::uint64_t>(at), data.size()),
            hash_of(data.data(), data.size()));
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(backends, splice_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "epoll" : "io_uring"; });

TEST(splice_pipe, prepare_read_never_reaches_past_the_current_file_size) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(10000, 33);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  recording_pipe p(ctx, pool, opts);
  sink s(out.b);
  p.start(endpoint{fd, 9000}, endpoint{out.a, -1}, 5000, false);  // asks past the end
  std::error_code ec;
  EXPECT_EQ(p.prepare_read(5000, ec), 1000u);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category()));
  EXPECT_EQ(p.bytes, 1000u);
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), 1000u);
  ::close(fd);
}

}  // namespace
}  // namespace pagewire::net
