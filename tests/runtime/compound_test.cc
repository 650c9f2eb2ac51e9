#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/runtime/compound.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/fault_injection.h>

#include "tests/runtime/test_ops.h"

namespace pagewire::runtime {
namespace {

using testing::nop_op;
using testing::pipe_fds;
using testing::read_op;
using testing::write_op;

struct recorded_compound final : compound {
  using compound::compound;
  int completions = 0;
  std::error_code ec;
  std::size_t total = 0;
  void on_complete(std::error_code e, std::size_t b) override {
    ++completions;
    ec = e;
    total = b;
  }
};

class Compound : public ::testing::TestWithParam<backend_kind> {
 protected:
  context ctx{testing::options_for(GetParam())};
};

TEST_P(Compound, CompletesAfterLastChildWithSummedBytesAndFirstError) {
  pipe_fds p;
  const std::string data(300, 'x');
  write_op w1(p.w, data.data(), 100), w2(p.w, data.data(), 200);
  write_op bad(-1, data.data(), 10);  // EBADF
  recorded_compound c(ctx);
  c.add(w1);
  c.add(w2);
  c.add(bad);
  c.start();
  ctx.run();
  EXPECT_EQ(c.completions, 1);
  EXPECT_TRUE(c.done());
  EXPECT_EQ(c.total, 300u);
  EXPECT_EQ(c.ec, std::error_code(EBADF, std::system_category()));
  EXPECT_EQ(w1.result_seen, 100);
  EXPECT_EQ(bad.result_seen, -EBADF);
}

TEST_P(Compound, CancelCascadeLeavesNoChildRunning) {
  pipe_fds p1, p2;
  char b1[16], b2[16];
  read_op r1(p1.r, b1, sizeof b1), r2(p2.r, b2, sizeof b2);  // never get data
  nop_op n;
  recorded_compound c(ctx);
  c.add(r1);
  c.add(r2);
  c.add(n);
  c.start();
  ASSERT_TRUE(testing::run_until(ctx, [&] { return n.completions == 1; }));
  EXPECT_TRUE(r1.in_flight());
  EXPECT_TRUE(r2.in_flight());
  c.cancel();
  ctx.run();
  EXPECT_EQ(r1.result_seen, -ECANCELED);
  EXPECT_EQ(r2.result_seen, -ECANCELED);
  EXPECT_EQ(ctx.in_flight(), 0u);
  EXPECT_EQ(c.completions, 1);
  EXPECT_EQ(c.ec, std::error_code(ECANCELED, std::system_category()));
}

TEST_P(Compound, ChildThatGetsEagainIsRetriedWithoutTheParentNoticing) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  pipe_fds p;
  const std::string data(64, 'y');
  write_op w(p.w, data.data(), data.size());
  ctx.faults().add(fault_rule::fail_nth(IORING_OP_WRITE, 1, EAGAIN));
  ctx.faults().add(fault_rule::fail_nth(IORING_OP_WRITE, 1, EINTR));
  recorded_compound c(ctx);
  c.add(w, data.size());
  c.start();
  ctx.run();
  EXPECT_EQ(ctx.faults().injected(), 2u);
  EXPECT_EQ(c.retries(), 2u);
  EXPECT_FALSE(c.ec);
  EXPECT_EQ(c.total, data.size());
  EXPECT_EQ(w.result_seen, 64);
  EXPECT_EQ(w.completions, 1);  // the child's own completion ran once
  char got[64];
  ASSERT_EQ(::read(p.r, got, sizeof got), 64);
}

TEST_P(Compound, ShortTransferIsResubmittedForTheRest) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  pipe_fds p;
  std::string data(1000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<char>('a' + i % 26);
  write_op w(p.w, data.data(), data.size());
  ctx.faults().add(fault_rule::short_nth(IORING_OP_WRITE, 1, 300));
  recorded_compound c(ctx);
  c.add(w, data.size());
  c.start();
  ctx.run();
  EXPECT_EQ(c.retries(), 1u);
  EXPECT_EQ(c.total, 1000u);
  EXPECT_EQ(w.result_seen, 1000);  // layers above see the whole transfer
  std::string got(1000, '\0');
  ASSERT_EQ(::read(p.r, got.data(), got.size()), 1000);
  EXPECT_EQ(got, data);
}

TEST_P(Compound, PermanentErrorIsNotRetried) {
  if (!faults_enabled()) GTEST_SKIP() << "fault injection not compiled in";
  nop_op a, b;
  ctx.faults().add(fault_rule::fail_nth(IORING_OP_NOP, 2, ECONNRESET));
  recorded_compound c(ctx);
  c.add(a);
  c.add(b);
  c.start();
  ctx.run();
  EXPECT_EQ(c.retries(), 0u);
  EXPECT_EQ(c.ec, std::error_code(ECONNRESET, std::system_category()));
  EXPECT_EQ(b.result_seen, -ECONNRESET);
}

INSTANTIATE_TEST_SUITE_P(Backends, Compound,
                         ::testing::Values(backend_kind::io_uring, backend_kind::fallback),
                         [](const auto& info) { return testing::backend_name(info.param); });

}  // namespace
}  // namespace pagewire::runtime
