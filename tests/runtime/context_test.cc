#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <memory>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/context_pool.h>

#include "tests/runtime/test_ops.h"

namespace pagewire::runtime {
namespace {

using namespace std::chrono_literals;
using testing::nop_op;
using testing::pipe_fds;
using testing::read_op;
using testing::write_op;

class Context : public ::testing::TestWithParam<backend_kind> {
 protected:
  context ctx{testing::options_for(GetParam())};
};

TEST_P(Context, ReportsWhichBackendRuns) {
  EXPECT_EQ(ctx.uses_io_uring(), GetParam() == backend_kind::io_uring);
  EXPECT_EQ(ctx.stats().snapshot().fallbacks, GetParam() == backend_kind::fallback ? 1u : 0u);
  EXPECT_EQ(ctx.native_ring() != nullptr, GetParam() == backend_kind::io_uring);
}

TEST_P(Context, RunReturnsWhenOutOfWork) {
  EXPECT_EQ(ctx.run(), 0u);
  nop_op a, b;
  ctx.start(a);
  ctx.start(b);
  EXPECT_EQ(ctx.run(), 2u);
  EXPECT_EQ(a.completions + b.completions, 2);
  EXPECT_EQ(ctx.in_flight(), 0u);
}

TEST_P(Context, PostFromFourThreadsRunsEveryFunctionOnTheLoop) {
  constexpr int kThreads = 4, kPerThread = 500;
  int counter = 0;  // touched only on the loop thread
  std::thread::id loop_id = std::this_thread::get_id();
  std::atomic<int> off_loop{0};
  ctx.work_started();
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        ctx.post([&] {
          ++counter;
          if (std::this_thread::get_id() != loop_id) off_loop.fetch_add(1);
        });
      }
    });
  }
  std::thread finisher([&] {
    for (auto& p : posters)
      p.join();
    ctx.work_finished();
  });
  ctx.run();
  finisher.join();
  EXPECT_EQ(counter, kThreads * kPerThread);
  EXPECT_EQ(off_loop.load(), 0);
  EXPECT_EQ(ctx.stats().snapshot().posted, static_cast<std::uint64_t>(kThreads * kPerThread));
}

TEST_P(Context, StopWithWorkInFlightThenShutdownCancelsAndDrains) {
  pipe_fds p;
  char buf[8];
  read_op stuck(p.r, buf, sizeof buf);
  struct stopping_nop : nop_op {
    context* c = nullptr;
    void complete(int r, unsigned f) override {
      nop_op::complete(r, f);
      c->stop();
    }
  } n;
  n.c = &ctx;
  ctx.start(stuck);
  ctx.start(n);
  ctx.run();
  EXPECT_TRUE(ctx.stopped());
  EXPECT_EQ(n.completions, 1);
  EXPECT_TRUE(stuck.in_flight());
  ctx.shutdown();
  EXPECT_EQ(stuck.result_seen, -ECANCELED);
  EXPECT_EQ(ctx.in_flight(), 0u);
  // Usable again after restart().
  ctx.restart();
  nop_op again;
  ctx.start(again);
  ctx.run();
  EXPECT_EQ(again.completions, 1);
}

TEST_P(Context, DestructorCompletesOperationsStillInFlight) {
  pipe_fds p;
  char buf[8];
  auto* c = new context(testing::options_for(GetParam()));
  read_op stuck(p.r, buf, sizeof buf);
  c->start(stuck);
  c->poll();
  delete c;
  EXPECT_EQ(stuck.result_seen, -ECANCELED);
}

TEST_P(Context, StopFromAnotherThreadWakesABlockedRun) {
  pipe_fds p;
  char buf[8];
  read_op stuck(p.r, buf, sizeof buf);
  ctx.start(stuck);
  std::thread stopper([&] { ctx.stop(); });
  ctx.run();  // returns only once stop() is seen
  stopper.join();
  EXPECT_TRUE(stuck.in_flight());
  ctx.cancel(stuck);
  ctx.restart();
  ctx.run();
  EXPECT_EQ(stuck.result_seen, -ECANCELED);
}

TEST_P(Context, PollRunsATaskPostedFromAnotherThreadBeforeIt) {
  ctx.poll();  // the first enter: the ring is enabled and the wake-up read armed
  int ran = 0;
  std::thread([&] { ctx.post([&] { ++ran; }); }).join();
  std::this_thread::sleep_for(10ms);  // the wake-up's CQE has surely arrived
  EXPECT_EQ(ctx.poll(), 1u);
  EXPECT_EQ(ran, 1);
  EXPECT_EQ(ctx.poll(), 0u);
}

TEST_P(Context, LinkedWritesThenReadRunInOrder) {
  pipe_fds p;
  const std::string a = "hello ", b = "world";
  char got[11] = {};
  write_op w1(p.w, a.data(), a.size()), w2(p.w, b.data(), b.size());
  read_op r(p.r, got, sizeof got);
  linked_op chain[] = {{&w1, {}}, {&w2, {}}, {&r, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  ctx.run();
  EXPECT_EQ(w1.result_seen, 6);
  EXPECT_EQ(w2.result_seen, 5);
  EXPECT_EQ(r.result_seen, 11);
  EXPECT_EQ(std::string(got, 11), "hello world");
}

TEST_P(Context, FailureInALinkedChainCancelsTheRest) {
  pipe_fds p;
  const std::string a = "x";
  write_op bad(-1, a.data(), 1), after(p.w, a.data(), 1);
  linked_op chain[] = {{&bad, {}}, {&after, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  ctx.run();
  EXPECT_EQ(bad.result_seen, -EBADF);
  EXPECT_EQ(after.result_seen, -ECANCELED);
}

TEST_P(Context, RunOneRunsOneHandlerForEachCancelledLink) {
  pipe_fds p;
  const std::string a = "x";
  write_op bad(-1, a.data(), 1), second(p.w, a.data(), 1), third(p.w, a.data(), 1);
  linked_op chain[] = {{&bad, {}}, {&second, {}}, {&third, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  auto completions = [&] { return bad.completions + second.completions + third.completions; };
  for (int expected = 1; expected <= 3; ++expected) {
    ASSERT_EQ(ctx.run_one(), 1u);
    EXPECT_EQ(completions(), expected);
  }
  EXPECT_EQ(bad.result_seen, -EBADF);
  EXPECT_EQ(second.result_seen, -ECANCELED);
  EXPECT_EQ(third.result_seen, -ECANCELED);
}

TEST_P(Context, LinkTimeoutCancelsAnOperationThatDoesNotFinish) {
  pipe_fds p;
  char buf[8];
  read_op stuck(p.r, buf, sizeof buf);
  ctx.start(stuck, 20ms);
  ctx.run();
  EXPECT_EQ(stuck.result_seen, -ECANCELED);
}

TEST_P(Context, LinkTimeoutDoesNotFireForAQuickOperation) {
  nop_op n;
  ctx.start(n, 10s);
  ctx.run();  // returns promptly: the timeout is removed with the NOP
  EXPECT_EQ(n.result_seen, 0);
}

TEST_P(Context, CancelByFdCancelsEverythingOnThatFd) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  char b1[4], b2[4];
  read_op r1(sv[0], b1, sizeof b1), r2(sv[0], b2, sizeof b2);
  pipe_fds other;
  char b3[4];
  read_op r3(other.r, b3, sizeof b3);
  ctx.start(r1);
  ctx.start(r2);
  ctx.start(r3);
  ctx.poll();
  ctx.cancel_fd(sv[0]);
  ASSERT_TRUE(testing::run_until(ctx, [&] { return r1.completions && r2.completions; }));
  EXPECT_EQ(r1.result_seen, -ECANCELED);
  EXPECT_EQ(r2.result_seen, -ECANCELED);
  EXPECT_TRUE(r3.in_flight());
  ctx.cancel(r3);
  ctx.run();
  EXPECT_EQ(r3.result_seen, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Context, CancelByFdAmongManyWaitersCancelsOnlyThatFd) {
  constexpr int kPairs = 200;
  std::vector<std::array<int, 2>> pairs(kPairs);
  std::vector<char> bufs(kPairs);
  std::vector<std::unique_ptr<read_op>> reads;
  for (int i = 0; i < kPairs; ++i) {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pairs[i].data()), 0);
    reads.push_back(std::make_unique<read_op>(pairs[i][0], &bufs[i], 1));
    ctx.start(*reads.back());
  }
  ctx.poll();
  for (int i = 0; i < kPairs; i += 2)
    ctx.cancel_fd(pairs[i][0]);
  for (int i = 1; i < kPairs; i += 2)
    ASSERT_EQ(::write(pairs[i][1], "y", 1), 1);
  ASSERT_TRUE(testing::run_until(ctx, [&] {
    for (const auto& r : reads)
      if (r->completions == 0) return false;
    return true;
  }));
  for (int i = 0; i < kPairs; ++i) {
    EXPECT_EQ(reads[i]->result_seen, i % 2 == 0 ? -ECANCELED : 1) << i;
    EXPECT_EQ(reads[i]->completions, 1) << i;
    ::close(pairs[i][0]);
    ::close(pairs[i][1]);
  }
}

TEST_P(Context, CancelReachesALaterLinkOnceItWaits) {
  pipe_fds p;
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  const std::string a = "x";
  char b1[1], b2[1];
  write_op w(p.w, a.data(), 1);
  read_op linked(sv[0], b1, sizeof b1);  // starts once the write completed
  linked_op chain[] = {{&w, {}}, {&linked, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  read_op other_end(sv[1], b2, sizeof b2);
  ctx.start(other_end);
  ASSERT_TRUE(testing::run_until(ctx, [&] { return w.completions == 1; }));
  ctx.poll();
  EXPECT_TRUE(linked.in_flight());
  pipe_fds idle;
  char b3[1];
  read_op deadline(idle.r, b3, sizeof b3);  // wakes the loop in 5 s if the cancel is lost
  ctx.start(deadline, 5s);
  ctx.cancel_fd(sv[0]);
  ASSERT_TRUE(testing::run_until(
      ctx, [&] { return linked.completions == 1 || deadline.completions == 1; }));
  EXPECT_EQ(linked.result_seen, -ECANCELED);
  EXPECT_TRUE(other_end.in_flight());
  ctx.cancel(other_end);
  ctx.cancel(deadline);
  ASSERT_TRUE(testing::run_until(
      ctx, [&] { return other_end.completions == 1 && deadline.completions == 1; }));
  EXPECT_EQ(other_end.result_seen, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Context, CancelOfAnIdleOperationIsRefused) {
  nop_op n;
  EXPECT_FALSE(ctx.cancel(n));
}

TEST_P(Context, FaultInjectionReplacesTheChosenResult) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  const int errs[] = {EAGAIN, EINTR, ECANCELED, ECONNRESET, EPIPE, ENOBUFS, ENOMEM};
  for (int e : errs)
    ctx.faults().add(fault_rule::fail_nth(IORING_OP_NOP, 1, e));
  std::vector<nop_op> ops(8);
  for (auto& o : ops)
    ctx.start(o);
  ctx.run();
  for (int i = 0; i < 7; ++i)
    EXPECT_EQ(ops[static_cast<std::size_t>(i)].result_seen, -errs[i]) << i;
  EXPECT_EQ(ops[7].result_seen, 0);
  EXPECT_EQ(ctx.stats().snapshot().faults_injected, 7u);
}

TEST_P(Context, RandomFaultsAreReproducibleFromTheSeed) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  auto pattern = [&](std::uint64_t seed) {
    context c(testing::options_for(GetParam()));
    c.faults().seed(seed);
    c.faults().add(fault_rule::random(IORING_OP_NOP, 0.5, EPIPE));
    std::vector<nop_op> ops(64);
    for (auto& o : ops)
      c.start(o);
    c.run();
    std::string s;
    for (auto& o : ops)
      s += o.result_seen == 0 ? '.' : 'E';
    return s;
  };
  const std::string a = pattern(42), b = pattern(42);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.find('E'), std::string::npos);
  EXPECT_NE(a.find('.'), std::string::npos);
}

TEST_P(Context, ShortTransferFaultOnAVectoredOpClampsTheResult) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  pipe_fds p;
  static char data[100] = {};
  struct writev_op : operation {
    int fd;
    iovec iov{data, sizeof data};
    int res = 0;
    void prepare(io_uring_sqe* sqe) override { io_uring_prep_writev(sqe, fd, &iov, 1, ~0ull); }
    void complete(int r, unsigned) override { res = r; }
  } w;
  w.fd = p.w;
  ctx.faults().add(fault_rule::short_nth(IORING_OP_WRITEV, 1, 7));
  ctx.start(w);
  ctx.run();
  EXPECT_EQ(w.res, 7);
}

TEST_P(Context, ContextPoolRunsOneContextPerThread) {
  context_pool pool(2, testing::options_for(GetParam()));
  std::promise<std::thread::id> ids[2];
  for (std::size_t i = 0; i < pool.size(); ++i) {
    pool.at(i).post([&, i] { ids[i].set_value(std::this_thread::get_id()); });
  }
  const std::thread::id a = ids[0].get_future().get(), b = ids[1].get_future().get();
  pool.stop();
  pool.join();
  EXPECT_NE(a, b);
  EXPECT_NE(a, std::this_thread::get_id());
}

INSTANTIATE_TEST_SUITE_P(Backends, Context,
                         ::testing::Values(backend_kind::io_uring, backend_kind::fallback),
                         [](const auto& info) { return testing::backend_name(info.param); });

// ---- busy polling (context_options::busy_poll) ---------------------------------

context_options busy_polling(backend_kind k, std::chrono::microseconds window) {
  context_options o = testing::options_for(k);
  o.busy_poll = window;
  return o;
}

// Runs `ctx` until a one-byte pipe read completes that another thread writes `delay` after
// the start; returns the read's result.
int run_read_written_after(context& ctx, std::chrono::milliseconds delay) {
  pipe_fds p;
  char buf[1];
  read_op r(p.r, buf, 1);
  ctx.start(r);
  std::thread writer([&] {
    std::this_thread::sleep_for(delay);
    EXPECT_EQ(::write(p.w, "x", 1), 1);
  });
  ctx.run();
  writer.join();
  return r.result_seen;
}

// A read that a writer thread completes 20 ms later: with a window far longer than that,
// the loop finds the completion while polling and never sleeps in the kernel for it.
TEST(BusyPoll, ACompletionWithinTheWindowIsFoundWithoutSleeping) {
  context ctx(busy_polling(backend_kind::io_uring, 30s));
  EXPECT_EQ(run_read_written_after(ctx, 20ms), 1);
  const auto s = ctx.stats().snapshot();
  EXPECT_GE(s.polled_wakeups, 1u);
  EXPECT_EQ(s.polled_idle, 0u);
}

// A window shorter than the wait: the loop polls, gives up, sleeps in the kernel, and the
// completion still arrives.
TEST(BusyPoll, AWindowThatRunsOutSleepsAndStillCompletes) {
  context ctx(busy_polling(backend_kind::io_uring, 200us));
  EXPECT_EQ(run_read_written_after(ctx, 50ms), 1);
  EXPECT_GE(ctx.stats().snapshot().polled_idle, 1u);
}

// Work from other threads is not held off for the window: a post() and a stop() that come
// while the loop polls are seen while it polls (the window, 30 s, would outlast the test).
TEST(BusyPoll, PostAndStopFromAnotherThreadEndThePollAtOnce) {
  context ctx(busy_polling(backend_kind::io_uring, 30s));
  bool ran = false;
  ctx.work_started();
  const auto t0 = std::chrono::steady_clock::now();
  std::thread poster([&] {
    std::this_thread::sleep_for(20ms);
    ctx.post([&] {
      ran = true;
      ctx.work_finished();
    });
  });
  ctx.run();
  poster.join();
  EXPECT_TRUE(ran);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);

  pipe_fds p;
  char buf[1];
  read_op stuck(p.r, buf, 1);
  ctx.restart();
  ctx.start(stuck);
  const auto t1 = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    ctx.stop();
  });
  ctx.run();  // returns once stop() is seen
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 15s);
  EXPECT_TRUE(stuck.in_flight());
  ctx.cancel(stuck);
  ctx.restart();
  ctx.run();
  EXPECT_EQ(stuck.result_seen, -ECANCELED);
}

// Off by default, and the fallback ignores it: neither polls.
TEST(BusyPoll, OffByDefaultAndIgnoredByTheFallback) {
  for (const context_options& o :
       {testing::options_for(backend_kind::io_uring), busy_polling(backend_kind::fallback, 30s)}) {
    context ctx(o);
    EXPECT_EQ(run_read_written_after(ctx, 20ms), 1);
    const auto s = ctx.stats().snapshot();
    EXPECT_EQ(s.polled_wakeups + s.polled_idle, 0u);
  }
}

// ---- io_uring only -----------------------------------------------------------

TEST(Ring, CqOverflowWithEightEntryRingCompletesAllAndIsCounted) {
  context_options o = testing::options_for(backend_kind::io_uring);
  o.ring.entries = 8;
  context ctx(o);
  ASSERT_EQ(ctx.native_ring()->sq_entries(), 8u);
  std::vector<nop_op> ops(512);
  for (auto& op : ops)
    ctx.start(op);  // SQ full every 8: submits without reaping
  ctx.run();
  for (auto& op : ops)
    ASSERT_EQ(op.completions, 1);
  const stats_snapshot s = ctx.stats().snapshot();
  EXPECT_EQ(s.completed, 512u);
  EXPECT_GE(s.cq_overflows, 1u);
  EXPECT_EQ(s.cq_dropped, 0u);
  EXPECT_EQ(ctx.in_flight(), 0u);
}

// start(op, timeout) needs two SQEs at once; a ring asked for one entry would never have
// them (the context spun, then aborted).
TEST(Ring, OneEntryRingStillRunsAnOperationWithATimeout) {
  context_options o = testing::options_for(backend_kind::io_uring);
  o.ring.entries = 1;
  context ctx(o);
  EXPECT_GE(ctx.native_ring()->sq_entries(), 2u);
  std::vector<nop_op> ops(4);
  for (auto& op : ops)
    ctx.start(op, std::chrono::seconds(5));
  ctx.run();
  for (auto& op : ops)
    EXPECT_EQ(op.completions, 1);
}

// A SEND_ZC whose bytes the kernel took (its first CQE came) but cannot send yet: the peer's
// receive window is closed, so its notification waits until `peer` reads everything queued
// before it, and no cancel can end it sooner.
struct stuck_send_zc {
  int listener = -1, sender = -1, peer = -1;
  std::size_t queued = 0;
  stuck_send_zc() {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;  // the accepted socket inherits it: a window of a few KiB
    ::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    socklen_t len = sizeof addr;
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        ::listen(listener, 1) != 0) {
      return;
    }
    sender = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int big = 1 << 20;  // room for what the peer's window holds back, and more
    ::setsockopt(sender, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    if (::connect(sender, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
    peer = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    const std::string filler(100000, 'f');
    const long n = ::send(sender, filler.data(), filler.size(), MSG_DONTWAIT);
    queued = n > 0 ? static_cast<std::size_t>(n) : 0;
  }
  ~stuck_send_zc() {
    for (int fd : {listener, sender, peer})
      if (fd >= 0) ::close(fd);
  }
  bool ok() const { return peer >= 0 && queued > 0; }
  // Reads everything the peer will get (the filler and `more`), which lets the sender finish.
  void drain_peer(std::size_t more) {
    char buf[65536];
    for (std::size_t got = 0; got < queued + more;) {
      const long n = ::read(peer, buf, sizeof buf);
      if (n <= 0) return;
      got += static_cast<std::size_t>(n);
    }
  }
};

struct zc_op : operation {
  int fd = -1;
  const char* data = "zc";
  int partials = 0;
  int completions = 0;
  int final_res = INT_MIN;
  unsigned final_flags = 0;
  void prepare(io_uring_sqe* sqe) override {
    io_uring_prep_send_zc(sqe, fd, data, 2, MSG_NOSIGNAL, 0);
  }
  void partial(int, unsigned) override { ++partials; }
  void complete(int r, unsigned f) override {
    final_res = r;
    final_flags = f;
    ++completions;
  }
};

// The destructor's drain must wait for an operation that outlives its cancel, not give up on
// it after a burst of cancels and leave the kernel to finish it once the memory is gone. The
// peer starts reading a second after the drain began. Run plainly and on a stopped context
// that busy-polls (whose poll returns at once).
void destructor_waits_for_an_operation_a_cancel_cannot_end(std::chrono::microseconds busy_poll) {
  stuck_send_zc net;
  ASSERT_TRUE(net.ok());
  zc_op zc;
  zc.fd = net.sender;
  std::atomic<bool> draining{false};
  std::thread reader([&] {
    while (!draining.load())
      std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(1s);
    net.drain_peer(2);
  });
  // The context lives and dies on one thread: its ring's single issuer.
  std::thread loop([&] {
    context_options o = testing::options_for(backend_kind::io_uring);
    o.busy_poll = busy_poll;
    context ctx(o);
    if (!ctx.probe().send_zc) return;
    ctx.start(zc);
    ASSERT_TRUE(testing::run_until(ctx, [&] { return zc.partials == 1; }));
    ctx.poll();
    ASSERT_EQ(zc.completions, 0) << "the notification came without the peer reading";
    ctx.stop();
    draining = true;
  });
  loop.join();
  draining = true;
  ::shutdown(net.sender, SHUT_WR);  // whatever happened, the reader's last read ends
  reader.join();
  if (zc.partials == 0) GTEST_SKIP() << "no SEND_ZC";
  EXPECT_EQ(zc.completions, 1) << "the context was destroyed with the operation in flight";
  EXPECT_EQ(zc.final_res, 2);
  EXPECT_TRUE(zc.final_flags & IORING_CQE_F_NOTIF);
}

TEST(Ring, DestructorWaitsForAnOperationThatOutlivesItsCancel) {
  destructor_waits_for_an_operation_a_cancel_cannot_end(std::chrono::microseconds{0});
}

TEST(Ring, DestructorOfAStoppedBusyPollingContextWaitsForAnOperationThatOutlivesItsCancel) {
  destructor_waits_for_an_operation_a_cancel_cannot_end(std::chrono::microseconds{50});
}

TEST(Ring, GenerationTagRejectsAStaleCqe) {
  context ctx(testing::options_for(backend_kind::io_uring));
  if (!ctx.probe().msg_ring) GTEST_SKIP() << "no IORING_OP_MSG_RING";
  nop_op first;
  ctx.start(first);
  ctx.run();
  const std::uint64_t stale = first.user_data();
  // The next operation reuses the slot with a new generation.
  pipe_fds p;
  char buf[4];
  read_op second(p.r, buf, sizeof buf);
  ctx.start(second);
  EXPECT_EQ(static_cast<std::uint32_t>(second.user_data()), static_cast<std::uint32_t>(stale));
  EXPECT_NE(second.user_data(), stale);
  // Make the kernel post a CQE carrying the old user_data (MSG_RING to ourselves).
  struct msg_op : nop_op {
    int ring_fd;
    std::uint64_t data;
    void prepare(io_uring_sqe* sqe) override { io_uring_prep_msg_ring(sqe, ring_fd, 0, data, 0); }
  } msg;
  msg.ring_fd = ctx.native_ring()->fd();
  msg.data = stale;
  ctx.start(msg);
  ASSERT_TRUE(testing::run_until(ctx, [&] { return msg.completions == 1; }));
  ctx.poll();
  EXPECT_EQ(msg.result_seen, 0);
  EXPECT_EQ(ctx.stats().snapshot().stale_cqes, 1u);
  EXPECT_TRUE(second.in_flight());
  EXPECT_EQ(second.completions, 0);
  EXPECT_EQ(first.completions, 1);
  ctx.cancel(second);
  ctx.run();
  EXPECT_EQ(second.result_seen, -ECANCELED);
}

TEST(Ring, ProbeReportsWhatThisKernelOffers) {
  context ctx(testing::options_for(backend_kind::io_uring));
  const probe_result& p = ctx.probe();
  EXPECT_TRUE(p.probed);
  EXPECT_TRUE(p.nop);
  EXPECT_TRUE(p.supports(IORING_OP_NOP));
  EXPECT_EQ(p.splice, p.supports(IORING_OP_SPLICE));
  EXPECT_EQ(p.send_zc, p.supports(IORING_OP_SEND_ZC));
  EXPECT_NE(ctx.native_ring()->setup_flags() & IORING_SETUP_SUBMIT_ALL, 0u);
}

TEST(Ring, UnsupportedSetupFlagsFallBackInsteadOfFailing) {
  // DEFER_TASKRUN without SINGLE_ISSUER is refused by the kernel; the ring
  // options never ask for it, and asking for all flags still yields a ring.
  ring_options o;
  o.entries = 4;
  std::error_code ec;
  auto r = ring::create(o, ec);
  ASSERT_TRUE(r) << ec.message();
  EXPECT_FALSE(ec);
  EXPECT_EQ(r->sq_entries(), 4u);
}

TEST(Fallback, EnvironmentVariableForcesTheFallback) {
  ::setenv("PAGEWIRE_FORCE_FALLBACK", "1", 1);
  context ctx;
  ::unsetenv("PAGEWIRE_FORCE_FALLBACK");
  EXPECT_FALSE(ctx.uses_io_uring());
  EXPECT_EQ(ctx.stats().snapshot().fallbacks, 1u);
  EXPECT_TRUE(ctx.fallback_reason());
}

}  // namespace
}  // namespace pagewire::runtime
