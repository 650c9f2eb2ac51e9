#include <memory>
#include <sys/resource.h>
#include <sys/socket.h>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/net/acceptor.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/timer.h>

#include "tests/net/net_testing.h"

namespace pagewire::net {
namespace {

using namespace testing;

// A listening socket and an acceptor started on it, on either backend: accepted descriptors
// go to `accepted_`, the final ECANCELED call sets `stopped_`. TearDown closes every socket.
class acceptor_backends : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::error_code ec;
    listener_ = listen_tcp("127.0.0.1", port_, true, 64, ec);
    ASSERT_GE(listener_, 0) << ec.message();
    acceptor_ = std::make_unique<acceptor>(ctx_, listener_, opts_);
    acceptor_->start([this](std::error_code e, int fd) {
      if (e == std::errc::operation_canceled) {
        stopped_ = true;
        return;
      }
      EXPECT_FALSE(e);
      accepted_.push_back(fd);
    });
  }
  void TearDown() override {
    acceptor_.reset();
    for (int fd : accepted_)
      ::close(fd);
    for (int fd : clients_)
      ::close(fd);
    if (listener_ >= 0) ::close(listener_);
  }

  runtime::context ctx_{backend(GetParam())};
  options opts_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  std::unique_ptr<acceptor> acceptor_;
  std::vector<int> accepted_;
  std::vector<int> clients_;
  bool stopped_ = false;
};

TEST_P(acceptor_backends, accepts_every_connection_and_stops_cleanly) {
  for (int i = 0; i < 5; ++i)
    clients_.push_back(connect_loopback(port_));
  EXPECT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 5; }, 1000));
  acceptor_->stop();
  EXPECT_TRUE(run_until(
      ctx_, [&] { return stopped_; }, 1000));
  EXPECT_FALSE(acceptor_->running());
  for (int fd : accepted_)
    EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
}

// The context shutting down cancels the accept: that stops the acceptor (one final
// ECANCELED call), where it used to arm again for 100,000 rounds and leak the operation.
TEST_P(acceptor_backends, context_shutdown_stops_it_with_one_final_call) {
  clients_.push_back(connect_loopback(port_));
  EXPECT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 1; }, 1000));
  const std::uint64_t arms = acceptor_->stats().arms;
  ctx_.shutdown();
  EXPECT_TRUE(stopped_);
  EXPECT_FALSE(acceptor_->running());
  EXPECT_EQ(acceptor_->stats().arms, arms);
}

// pause_accepting() then resume_accepting() before the cancelled accept completes: its
// ECANCELED is the acceptor's own, so accepting goes on.
TEST_P(acceptor_backends, resuming_before_the_paused_accept_completes_keeps_accepting) {
  clients_.push_back(connect_loopback(port_));
  EXPECT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 1; }, 1000));
  acceptor_->pause_accepting();
  acceptor_->resume_accepting();
  clients_.push_back(connect_loopback(port_));
  EXPECT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 2; }, 1000));
  EXPECT_FALSE(stopped_);
  EXPECT_TRUE(acceptor_->running());
  acceptor_->stop();
  EXPECT_TRUE(run_until(
      ctx_, [&] { return stopped_; }, 1000));
}

TEST_P(acceptor_backends, pause_accepting_leaves_connections_in_the_backlog_until_resumed) {
  acceptor& a = *acceptor_;
  clients_.push_back(connect_loopback(port_));
  ASSERT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 1; }, 1000));
  a.pause_accepting();
  EXPECT_TRUE(a.accepting_paused());
  for (int i = 0; i < 3; ++i)
    clients_.push_back(connect_loopback(port_));  // the kernel completes them in the backlog
  runtime::timer wait(ctx_);  // keep the loop running a while: the acceptor takes nothing
  bool waited = false;
  wait.expires_after(std::chrono::milliseconds(100));
  wait.async_wait([&](std::error_code) { waited = true; });
  ASSERT_TRUE(run_until(ctx_, [&] { return waited; }));
  EXPECT_EQ(accepted_.size(), 1u);
  a.resume_accepting();
  EXPECT_FALSE(a.accepting_paused());
  EXPECT_TRUE(run_until(
      ctx_, [&] { return accepted_.size() == 4; }, 1000));
  a.pause_accepting();  // stop() while paused still ends with the final ECANCELED call
  a.stop();
  EXPECT_TRUE(run_until(
      ctx_, [&] { return stopped_; }, 1000));
}

// stop() from the handler of an accept's last completion (a hard error here: a listener shut
// down fails the armed accept with EINVAL), then the acceptor destroyed in the final ECANCELED
// call, as the header allows: nothing of it may run afterwards (ASan sees a use after free).
TEST_P(acceptor_backends, stop_from_the_handler_then_destroying_in_the_final_call_is_safe) {
  acceptor_->stop();  // the fixture's acceptor makes way for one this test owns
  ASSERT_TRUE(run_until(
      ctx_, [&] { return stopped_; }, 1000));
  acceptor_.reset();
  auto owned = std::make_unique<acceptor>(ctx_, listener_, opts_);
  int errors = 0;
  int cancels = 0;
  owned->start([&](std::error_code e, int fd) {
    if (e == std::errc::operation_canceled) {
      ++cancels;
      owned.reset();
      return;
    }
    EXPECT_LT(fd, 0);
    ++errors;
    owned->stop();
  });
  ctx_.post([&] { ::shutdown(listener_, SHUT_RDWR); });
  EXPECT_TRUE(run_until(
      ctx_, [&] { return cancels > 0; }, 1000));
  ctx_.poll();  // whatever the acceptor left queued runs now, after its destruction
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(cancels, 1);
}

INSTANTIATE_TEST_SUITE_P(backends, acceptor_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "epoll" : "io_uring"; });

TEST(acceptor, emfile_sheds_pauses_and_recovers_without_spinning) {
  runtime::context ctx(backend(false));
  options opts;
  opts.accept_backoff = std::chrono::milliseconds(20);
  std::uint16_t port = 0;
  std::error_code ec;
  const int l = listen_tcp("127.0.0.1", port, false, 64, ec);
  ASSERT_GE(l, 0);
  acceptor a(ctx, l, opts);
  constexpr int kClients = 12;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i)
    clients.push_back(connect_loopback(port));
  // Room for two more descriptors only: the acceptor hits EMFILE on the third.
  int highest = 0;
  for (int fd = 0; fd < 4096; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
  }
  rlimit old{};
  ::getrlimit(RLIMIT_NOFILE, &old);
  rlimit low = old;
  low.rlim_cur = static_cast<rlim_t>(highest + 3);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> held;
  bool stopped = false;
  a.start([&](std::error_code e, int fd) {
    // No virtual call on the category while descriptors are exhausted: sanitizers need a
    // free fd (a pipe) to check vptrs.
    if (e.value() == ECANCELED) {
      stopped = true;
      return;
    }
    if (!e) held.push_back(fd);
  });
  EXPECT_TRUE(run_until(
      ctx, [&] { return a.stats().pauses >= 1; }, 10'000));
  // Free the descriptors: accepting resumes after the backoff.
  ::setrlimit(RLIMIT_NOFILE, &old);
  for (int fd : held)
    ::close(fd);
  const std::size_t held_before = held.size();
  EXPECT_TRUE(run_until(
      ctx, [&] { return held.size() + a.stats().shed >= kClients; }, 100'000));
  const auto& st = a.stats();
  EXPECT_GE(st.exhausted, 1u);
  EXPECT_GE(st.shed, 1u);
  EXPECT_EQ(st.accepted + st.shed, static_cast<std::uint64_t>(kClients));
  // No spin: each arm accepted something or ended in one exhaustion + pause.
  EXPECT_LE(st.arms, st.accepted + st.pauses + 2);
  a.stop();
  EXPECT_TRUE(run_until(
      ctx, [&] { return stopped; }, 1000));
  for (std::size_t i = held_before; i < held.size(); ++i)
    ::close(held[i]);
  for (int fd : clients)
    ::close(fd);
  ::close(l);
}

}  // namespace
}  // namespace pagewire::net
