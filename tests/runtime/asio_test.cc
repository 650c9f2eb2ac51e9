#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <gtest/gtest.h>

#include <pagewire/runtime/asio_host.h>
#include <pagewire/runtime/async.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/timer.h>

#include "tests/runtime/test_ops.h"

namespace pagewire::runtime {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::pipe_fds;

class Asio : public ::testing::TestWithParam<backend_kind> {
 protected:
  context ctx{testing::options_for(GetParam())};
};

TEST_P(Asio, CallbackForm) {
  std::error_code got_ec = std::make_error_code(std::errc::io_error);
  int got = -1;
  async_nop(ctx, [&](std::error_code ec, int n) {
    got_ec = ec;
    got = n;
  });
  ctx.run();
  EXPECT_FALSE(got_ec);
  EXPECT_EQ(got, 0);
}

// The handler's work guard ends on the loop's thread: run() sees it has no work left, so
// nothing writes the wake-up eventfd, and the ring delivers the NOPs' CQEs and no other.
TEST(AsioOnIoUring, LastWorkEndingOnTheLoopThreadWakesNothing) {
  context ring_ctx(testing::options_for(backend_kind::io_uring));
  constexpr int kRounds = 50;
  int done = 0;
  for (int i = 0; i < kRounds; ++i) {
    async_nop(ring_ctx, [&](std::error_code ec, int) { done += ec ? 0 : 1; });
    EXPECT_EQ(ring_ctx.run(), 1u);
  }
  EXPECT_EQ(done, kRounds);
  EXPECT_EQ(ring_ctx.stats().snapshot().cqes, static_cast<std::uint64_t>(kRounds));
}

TEST_P(Asio, ErrorsArriveAsErrorCodes) {
  std::error_code got_ec;
  async_sqe(
      ctx, [](io_uring_sqe* sqe) { io_uring_prep_close(sqe, -1); },
      [&](std::error_code ec, int) { got_ec = ec; });
  ctx.run();
  EXPECT_EQ(got_ec, std::error_code(EBADF, std::system_category()));
}

TEST_P(Asio, FutureForm) {
  std::future<std::tuple<std::error_code, int>> f = async_nop(ctx, asio::use_future);
  ctx.run();
  auto [ec, n] = f.get();
  EXPECT_FALSE(ec);
  EXPECT_EQ(n, 0);
}

TEST_P(Asio, DeferredForm) {
  auto op = async_nop(ctx, asio::deferred);
  int calls = 0;
  EXPECT_EQ(ctx.in_flight(), 0u);  // nothing starts until the deferred op is invoked
  std::move(op)([&](std::error_code ec, int) {
    EXPECT_FALSE(ec);
    ++calls;
  });
  ctx.run();
  EXPECT_EQ(calls, 1);
}

TEST_P(Asio, CoAwaitFormWithCoSpawnOnTheContextExecutor) {
  pipe_fds p;
  std::string got;
  bool finished = false;
  asio::co_spawn(
      ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        auto [ec, n] = co_await async_nop(ctx, asio::use_awaitable);
        EXPECT_FALSE(ec);
        const char msg[] = "ping";
        auto [wec, w] = co_await async_sqe(
            ctx, [&](io_uring_sqe* sqe) { io_uring_prep_write(sqe, p.w, msg, 4, ~0ull); },
            asio::use_awaitable);
        EXPECT_EQ(w, 4);
        char buf[8];
        auto [rec, r] = co_await async_sqe(
            ctx, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, p.r, buf, sizeof buf, ~0ull); },
            asio::use_awaitable);
        got.assign(buf, static_cast<std::size_t>(r));
        timer t(ctx);
        t.expires_after(1ms);
        std::error_code tec = co_await t.async_wait(asio::use_awaitable);
        EXPECT_FALSE(tec);
        finished = true;
      },
      asio::detached);
  ctx.run();
  EXPECT_TRUE(finished);
  EXPECT_EQ(got, "ping");
}

TEST_P(Asio, AsioPostAcceptsTheExecutor) {
  int ran = 0;
  asio::post(ctx.get_executor(), [&] { ++ran; });
  asio::post(asio::bind_executor(ctx.get_executor(), [&] { ++ran; }));
  ctx.run();
  EXPECT_EQ(ran, 2);
}

TEST_P(Asio, TimerCancelCompletesWithOperationAborted) {
  timer t(ctx);
  t.expires_after(10s);
  std::error_code got;
  t.async_wait([&](std::error_code ec) { got = ec; });
  ctx.poll();
  EXPECT_EQ(t.cancel(), 1u);
  ctx.run();
  EXPECT_EQ(got.value(), ECANCELED);
  EXPECT_EQ(got.value(), asio::error::operation_aborted);
}

// A wait whose timer already fired cannot be cancelled any more (io_uring: the cancel finds
// nothing; Asio's own timers behave the same): cancelling it from the handler of a timer that
// fired together with it leaves it a success.
TEST_P(Asio, TimerThatAlreadyFiredCompletesWithoutErrorWhenCancelledLate) {
  timer a(ctx);
  timer b(ctx);
  a.expires_after(1ms);
  b.expires_after(1ms);
  std::error_code got_a = std::make_error_code(std::errc::io_error);
  std::error_code got_b = got_a;
  // Whichever runs first cancels the other, which has fired too.
  a.async_wait([&](std::error_code ec) {
    got_a = ec;
    b.cancel();
  });
  b.async_wait([&](std::error_code ec) {
    got_b = ec;
    a.cancel();
  });
  ctx.poll();  // both waits start
  std::this_thread::sleep_for(50ms);
  ctx.run();
  EXPECT_FALSE(got_a) << got_a.message();
  EXPECT_FALSE(got_b) << got_b.message();
}

// The expiry is a point in time (expires_at), not a delay counted from whenever the loop
// first hands the wait to the kernel: a wait started well before run() whose expiry passed
// meanwhile completes as soon as the loop runs.
TEST_P(Asio, TimerWaitStartedBeforeTheLoopRunsExpiresAtItsExpiryNotLater) {
  timer t(ctx);
  t.expires_after(300ms);
  std::error_code got = std::make_error_code(std::errc::io_error);
  t.async_wait([&](std::error_code ec) { got = ec; });
  std::this_thread::sleep_for(400ms);  // the loop is busy elsewhere; the expiry passes
  const auto t0 = std::chrono::steady_clock::now();
  ctx.run();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 150ms);
  EXPECT_FALSE(got);
}

TEST_P(Asio, TimerExpiresAndCompletesWithoutError) {
  timer t(ctx);
  t.expires_after(2ms);
  std::error_code got = std::make_error_code(std::errc::io_error);
  t.async_wait([&](std::error_code ec) { got = ec; });
  ctx.run();
  EXPECT_FALSE(got);
}

TEST_P(Asio, CancellationSlotCancelsTheSqe) {
  pipe_fds p;
  char buf[4];
  asio::cancellation_signal sig;
  std::error_code got;
  async_sqe(
      ctx, [&](io_uring_sqe* sqe) { io_uring_prep_read(sqe, p.r, buf, 4, ~0ull); },
      asio::bind_cancellation_slot(sig.slot(), [&](std::error_code ec, int) { got = ec; }));
  ctx.poll();
  sig.emit(asio::cancellation_type::terminal);
  ctx.run();
  EXPECT_EQ(got.value(), ECANCELED);
}

TEST_P(Asio, HostedInsideAnAsioIoContext) {
  asio::io_context io;
  asio_host host(io, testing::options_for(GetParam()));
  context& hosted = host.get();
  EXPECT_EQ(hosted.uses_io_uring(), GetParam() == backend_kind::io_uring);
  pipe_fds p;
  int steps = 0;
  bool asio_side = false;
  asio::post(io, [&] { asio_side = true; });  // the host's own work runs alongside
  timer t(hosted);
  t.expires_after(1ms);
  t.async_wait([&](std::error_code ec) {
    EXPECT_FALSE(ec);
    ++steps;
    async_nop(hosted, [&](std::error_code nec, int) {
      EXPECT_FALSE(nec);
      ++steps;
      io.stop();
    });
  });
  io.run();
  EXPECT_EQ(steps, 2);
  EXPECT_TRUE(asio_side);
}

TEST_P(Asio, PrepReceivesAZeroedSqe) {
  context_options o = testing::options_for(GetParam());
  o.ring.entries = 4;  // SQ slots come round again after a few operations
  context small(o);
  static const io_uring_sqe zero{};
  int dirty = 0;
  for (int i = 0; i < 12; ++i) {
    async_sqe(
        small,
        [&](io_uring_sqe* sqe) {
          dirty += std::memcmp(sqe, &zero, sizeof zero) != 0 ? 1 : 0;
          io_uring_prep_nop(sqe);
        },
        [](std::error_code, int) {});
    small.run();
  }
  EXPECT_EQ(dirty, 0);
}

// A wake-up that brings no task (the last work_finished() on another thread) re-arms the
// wake-up read; a task posted afterwards must still reach the hosted context.
TEST(AsioHostOnIoUring, PostAfterAWakeUpWithoutATaskStillRuns) {
  asio::io_context io;
  asio_host host(io, testing::options_for(backend_kind::io_uring));
  context& hosted = host.get();
  std::atomic<bool> ran{false};
  std::thread other([&] {
    std::this_thread::sleep_for(30ms);
    hosted.work_started();
    hosted.work_finished();
    std::this_thread::sleep_for(30ms);
    hosted.post([&] {
      ran = true;
      io.stop();
    });
  });
  io.run_for(2s);
  other.join();
  EXPECT_TRUE(ran);
}

// stop() from another thread leaves the wake-up's CQE unreaped (the ring fd readable): the
// host must not spin on it, and restart() resumes the hosted context.
TEST(AsioHostOnIoUring, StopFromAnotherThreadLeavesTheHostIdleUntilRestart) {
  asio::io_context io;
  asio_host host(io, testing::options_for(backend_kind::io_uring));
  context& hosted = host.get();
  io.run_for(20ms);
  std::thread([&] { hosted.stop(); }).join();
  EXPECT_LT(io.run_for(200ms), 10u);
  hosted.restart();
  std::atomic<bool> ran{false};
  std::thread([&] {
    hosted.post([&] {
      ran = true;
      io.stop();
    });
  }).join();
  io.restart();
  io.run_for(2s);
  EXPECT_TRUE(ran);
}

// On the fallback, the hosted context's poll() runs host handlers, its own kick among them:
// an operation restarted from complete() must not nest one poll() in another per round.
TEST(AsioHostOnFallback, OperationsRestartedFromCompleteRunAtAConstantStackDepth) {
  asio::io_context io;
  asio_host host(io, testing::options_for(backend_kind::fallback));
  struct again : operation {
    context* ctx = nullptr;
    asio::io_context* io = nullptr;
    int left = 500;
    const char* base = nullptr;
    std::size_t deepest = 0;
    void prepare(io_uring_sqe* sqe) override { io_uring_prep_nop(sqe); }
    void complete(int, unsigned) override {
      const auto* here = static_cast<const char*>(__builtin_frame_address(0));
      if (!base) base = here;
      deepest = std::max(deepest, static_cast<std::size_t>(base > here ? base - here : 0));
      if (--left > 0) {
        ctx->start(*this);
      } else {
        io->stop();
      }
    }
  } op;
  op.ctx = &host.get();
  op.io = &io;
  host.get().start(op);
  io.run_for(10s);
  EXPECT_EQ(op.left, 0);
  EXPECT_LT(op.deepest, 16u * 1024);  // nested, it grows by hundreds of bytes per round
}

// fallback wake() posts to the host's io_context; the handler may still be queued when the
// asio_host is gone.
TEST(AsioHostOnFallback, WakeUpLeftQueuedOnTheHostAfterTeardownDoesNothing) {
  asio::io_context io;
  int ran = 0;
  {
    asio_host host(io, testing::options_for(backend_kind::fallback));
    io.poll();
    host.get().post([&] { ++ran; });  // not inside poll(): queued remotely, wake-up posted
  }
  const int ran_at_teardown = ran;  // the teardown's drain may run it
  io.restart();
  io.poll();  // runs the stale wake-up handler
  EXPECT_EQ(ran, ran_at_teardown);
}

TEST(AsioHostOnFallback, TeardownAfterTheHostStoppedCompletesOperationsInFlight) {
  pipe_fds p;
  char buf[8];
  testing::read_op r(p.r, buf, sizeof buf);
  asio::io_context io;
  const auto start = std::chrono::steady_clock::now();
  {
    asio_host host(io, testing::options_for(backend_kind::fallback));
    host.get().start(r);
    io.poll();  // the read waits for data
    io.stop();  // the host program stops its loop, then tears pagewire down
  }
  EXPECT_EQ(r.completions, 1);
  EXPECT_EQ(r.result_seen, -ECANCELED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  io.restart();
  io.poll();  // the host runs on: what pagewire left queued there does nothing
  EXPECT_EQ(r.completions, 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, Asio,
                         ::testing::Values(backend_kind::io_uring, backend_kind::fallback),
                         [](const auto& info) { return testing::backend_name(info.param); });

}  // namespace
}  // namespace pagewire::runtime
