// Counts heap allocations on the loop thread: a steady receive/send loop on one connection
// allocates nothing (handler nodes live in the connection's slots; transmit reuses its op),
// nor does a transmit_op fed message after message from one chain.

#include <atomic>
#include <cstdlib>
#include <memory>
#include <new>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/recv_buffer_ring.h>
#include <pagewire/net/transmit.h>
#include <pagewire/runtime/context.h>

#include "tests/net/net_testing.h"

namespace {
thread_local std::uint64_t t_allocations = 0;
}  // namespace

// A counting global operator new for this test binary (per thread: the sink's thread and
// gtest's own allocations on other threads do not count).
void* operator new(std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace pagewire::net {
namespace {

using namespace testing;

constexpr int kWarm = 4, kRounds = 200;

// Runs round(i) for i in [0, kWarm + kRounds), stopping at a fatal failure; returns the loop
// thread's allocations in the last kRounds (the warm-up fills slots, pools and chain storage).
template <class Round>
std::uint64_t allocations_after_warm_up(Round round) {
  std::uint64_t counted = 0;
  for (int i = 0; i < kWarm + kRounds && !::testing::Test::HasFatalFailure(); ++i) {
    if (i == kWarm) counted = t_allocations;
    round(i);
  }
  return t_allocations - counted;
}

class steady_loop : public ::testing::TestWithParam<bool> {};

// transmit_op::start hands the previous message's storage back in the chain it was given, so
// an application that builds every message in one chain (header slice + body slice here)
// allocates nothing per message.
TEST_P(steady_loop, messages_built_in_one_chain_reuse_its_storage) {
  const bool fallback = GetParam();
  runtime::context ctx(backend(fallback));
  options opts;
  pipe_pool pipes(opts);
  tcp_pair p = make_pair();
  sink s(p.b);
  recording<transmit_op> op(ctx, opts, pipes);
  static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  static const char body[] = "hello";
  fs::chain message;
  const std::uint64_t during = allocations_after_warm_up([&](int) {
    message.append(fs::slice::from_static(head, sizeof head - 1));
    message.append(fs::slice::from_static(body, sizeof body - 1));
    op.done = false;
    op.start(p.a, std::move(message));
    EXPECT_TRUE(message.empty());
    ASSERT_TRUE(run_until(ctx, [&] { return op.done; }));
    ASSERT_FALSE(op.ec) << op.ec.message();
  });
  EXPECT_EQ(during, 0u) << "allocations in " << kRounds << " transmits";
  ::shutdown(p.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), (kWarm + kRounds) * (sizeof head - 1 + sizeof body - 1));
}

// The same through connection::async_send with a callback, the session's way (it builds
// every response in one pending chain): handler nodes live in the connection's slots, the
// transmit_op is reused, and the chain gets its storage back.
TEST_P(steady_loop, n_sends_on_one_connection_allocate_nothing) {
  const bool fallback = GetParam();
  runtime::context ctx(backend(fallback));
  options opts;
  pipe_pool pipes(opts);
  tcp_pair p = make_pair();
  connection c(ctx, std::exchange(p.a, -1), opts, pipes, nullptr);
  sink s(p.b);
  static const char body[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  fs::chain message;
  const std::uint64_t during = allocations_after_warm_up([&](int) {
    message.append(fs::slice::from_static(body, sizeof body - 1));
    bool done = false;
    std::error_code err;
    c.async_send(std::move(message), [&](std::error_code ec, std::uint64_t) {
      err = ec;
      done = true;
    });
    EXPECT_TRUE(message.empty());
    ASSERT_TRUE(run_until(ctx, [&] { return done; }));
    ASSERT_FALSE(err) << err.message();
  });
  EXPECT_EQ(during, 0u) << "allocations in " << kRounds << " sends";
  bool closed = false;
  c.async_close([&](std::error_code) { closed = true; });
  EXPECT_TRUE(run_until(ctx, [&] { return closed; }));
  EXPECT_EQ(s.bytes(), (kWarm + kRounds) * (sizeof body - 1));
}

// The buffer-ring path (io_uring, multishot): the fallback's plain recv hands a heap block up
// with each receive by design (received::from_heap), so it is not counted here. One
// connection with a ring of 8 buffers; TearDown closes it.
class steady_loop_ring : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!ctx_.uses_io_uring() || !ctx_.probe().multishot_recv) GTEST_SKIP() << "no multishot recv";
    opts_.recv_buffers = 8;
    opts_.recv_buffer_size = 4096;
    pipes_ = std::make_unique<pipe_pool>(opts_);
    std::error_code ec;
    ring_ = recv_buffer_ring::create(ctx_, opts_, 3, ec);
    conn_ =
        std::make_unique<connection>(ctx_, std::exchange(pair_.a, -1), opts_, *pipes_, ring_.get());
  }
  void TearDown() override {
    if (!conn_) return;
    bool closed = false;
    conn_->async_close([&](std::error_code) { closed = true; });
    EXPECT_TRUE(run_until(ctx_, [&] { return closed; }));
  }
  // Arms one receive; it sets `got` to the block's size and `done`.
  void arm_receive(bool& done, std::size_t& got) {
    conn_->async_receive([&](std::error_code e, received r) {
      EXPECT_FALSE(e);
      got = r.size();
      r.release();
      done = true;
    });
  }
  void send_byte() { ASSERT_EQ(::send(pair_.b, "x", 1, 0), 1); }

  runtime::context ctx_{backend(false)};
  options opts_;
  std::unique_ptr<pipe_pool> pipes_;
  std::unique_ptr<recv_buffer_ring> ring_;
  tcp_pair pair_ = make_pair();
  std::unique_ptr<connection> conn_;
};

TEST_F(steady_loop_ring, n_receives_on_one_connection_allocate_nothing) {
  const std::uint64_t during = allocations_after_warm_up([&](int) {
    bool done = false;
    std::size_t got = 0;
    arm_receive(done, got);
    // The byte is sent after the receive is armed, so it is handed straight up (not queued).
    send_byte();
    ASSERT_TRUE(run_until(ctx_, [&] { return done; }));
    EXPECT_EQ(got, 1u);
  });
  EXPECT_EQ(during, 0u) << "allocations in " << kRounds << " receives";
}

TEST_F(steady_loop_ring, n_receives_of_blocks_that_arrived_first_allocate_nothing) {
  const std::uint64_t during = allocations_after_warm_up([&](int i) {
    if (i > 0) {  // the multishot receive is armed: the byte arrives with nobody waiting
      const auto before = conn_->stats().receives;
      send_byte();
      ASSERT_TRUE(run_until(ctx_, [&] { return conn_->stats().receives > before; }));
    }
    bool done = false;
    std::size_t got = 0;
    arm_receive(done, got);
    if (i == 0) send_byte();  // the first receive arms the multishot receive
    ASSERT_TRUE(run_until(ctx_, [&] { return done; }));
    EXPECT_EQ(got, 1u);
  });
  EXPECT_EQ(during, 0u) << "allocations in " << kRounds << " queued receives";
}

INSTANTIATE_TEST_SUITE_P(backends, steady_loop, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "epoll" : "uring"; });

}  // namespace
}  // namespace pagewire::net
