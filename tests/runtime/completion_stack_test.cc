#include <vector>

#include <gtest/gtest.h>

#include <pagewire/runtime/completion_stack.h>
#include <pagewire/runtime/context.h>

#include "tests/runtime/test_ops.h"

namespace pagewire::runtime {
namespace {

using testing::nop_op;

struct recording_action final : completion_action {
  std::vector<int>* log = nullptr;
  int tag = 0;
  int add = 0;  // rewrites the result by this much
  bool defer_once = false;
  bool saw_done = true;
  std::vector<bool>* deferred_flags = nullptr;
  action_result on_complete(operation& op, int& result, bool deferred) override {
    if (defer_once && !deferred) return action_result::defer;
    saw_done = op.done();
    if (deferred_flags) deferred_flags->push_back(deferred);
    log->push_back(tag);
    result += add;
    return action_result::done;
  }
};

class CompletionStack : public ::testing::TestWithParam<backend_kind> {
 protected:
  context ctx{testing::options_for(GetParam())};
};

TEST_P(CompletionStack, ActionsRunLifoAndOperationIsDoneOnlyAfterTheLast) {
  std::vector<int> log;
  nop_op op;
  op.log = &log;
  op.tag = 100;
  recording_action a[3];
  for (int i = 0; i < 3; ++i) {
    a[i].log = &log;
    a[i].tag = i;
    a[i].add = 10;
    op.push_action(a[i]);
  }
  ctx.start(op);
  ctx.run();
  // Pushed 0, 1, 2 (upper layer first): run 2, 1, 0, then complete() (100).
  EXPECT_EQ(log, (std::vector<int>{2, 1, 0, 100}));
  for (auto& x : a)
    EXPECT_FALSE(x.saw_done);
  EXPECT_TRUE(op.done_at_complete);
  EXPECT_EQ(op.result_seen, 30);  // each layer rewrote the result
  EXPECT_FALSE(op.has_actions());
}

TEST_P(CompletionStack, DeferredActionRunsLaterOnTheLoopAndTheRestFollowIt) {
  std::vector<int> log;
  std::vector<bool> flags;
  nop_op op;
  op.log = &log;
  op.tag = 100;
  recording_action upper, lower;
  upper.log = lower.log = &log;
  upper.deferred_flags = lower.deferred_flags = &flags;
  upper.tag = 1;
  lower.tag = 2;
  lower.defer_once = true;
  op.push_action(upper);
  op.push_action(lower);
  ctx.start(op);
  // First handler: the CQE; the lower action defers, nothing else ran yet.
  ASSERT_EQ(ctx.run_one(), 1u);
  EXPECT_TRUE(log.empty());
  EXPECT_FALSE(op.done());
  EXPECT_FALSE(op.in_flight());
  // Second handler: the deferred task unwinds the rest.
  ASSERT_EQ(ctx.run_one(), 1u);
  EXPECT_EQ(log, (std::vector<int>{2, 1, 100}));
  EXPECT_EQ(flags, (std::vector<bool>{true, true}));
  EXPECT_TRUE(op.done());
}

TEST_P(CompletionStack, OperationWithoutActionsCompletesDirectly) {
  nop_op op;
  ctx.start(op);
  EXPECT_TRUE(op.in_flight());
  EXPECT_EQ(ctx.run_one(), 1u);
  EXPECT_EQ(op.completions, 1);
  EXPECT_EQ(op.result_seen, 0);
  EXPECT_TRUE(op.done());
  EXPECT_EQ(ctx.stats().snapshot().completed, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, CompletionStack,
                         ::testing::Values(backend_kind::io_uring, backend_kind::fallback),
                         [](const auto& info) { return testing::backend_name(info.param); });

}  // namespace
}  // namespace pagewire::runtime
