// zcbench's pairing of trials: the order one round runs its paths in, and ratios taken
// round by round.

#include "apps/zcbench/measure.h"

#include <gtest/gtest.h>

namespace zcbench {
namespace {

record with_rates(std::vector<std::pair<int, double>> rounds_and_rates) {
  record r;
  for (auto [round, gb_per_s] : rounds_and_rates) {
    trial_figures t;
    t.round = round;
    t.gb_per_s = gb_per_s;
    r.trials.push_back(t);
  }
  return r;
}

TEST(RoundOrder, PutsEachRawLoopRightBeforeThePathsComparedWithIt) {
  const std::vector<std::string> table = {"copy",        "sendfile",   "splice",
                                          "send_zc",     "sendmsg",    "pw_splice_pipe",
                                          "pw_sendfile", "pw_send_zc", "pw_gather"};
  EXPECT_EQ(round_order(table),
            (std::vector<std::string>{"copy", "sendfile", "pw_sendfile", "splice", "pw_splice_pipe",
                                      "send_zc", "pw_send_zc", "sendmsg", "pw_gather"}));
}

TEST(RoundOrder, KeepsAPathWhoseRawLoopIsNotSelectedWhereItWas) {
  EXPECT_EQ(round_order({"copy", "pw_sendfile", "splice"}),
            (std::vector<std::string>{"copy", "pw_sendfile", "splice"}));
}

TEST(RoundOrder, GroupsFilterPathsWithTheirRawLoops) {
  EXPECT_EQ(round_order({"copy", "gzip_raw6", "zstd_raw3", "pw_gzip6", "pw_zstd3"}),
            (std::vector<std::string>{"copy", "gzip_raw6", "pw_gzip6", "zstd_raw3", "pw_zstd3"}));
}

TEST(PairedRatio, IsTheMedianOfRatiosWithinEachRound) {
  // Round 1 ran in a fast spell, rounds 2 and 3 in a slow one: the ratio of the medians
  // (2.0 / 2.5 = 0.8) compares trials of different spells; the pairs say 1.0, 1.0, 0.9.
  const record path = with_rates({{1, 3.0}, {2, 2.0}, {3, 1.8}});
  const record raw = with_rates({{1, 3.0}, {2, 2.0}, {3, 2.5}});
  ASSERT_TRUE(paired_ratio(path, raw).has_value());
  EXPECT_DOUBLE_EQ(*paired_ratio(path, raw), 1.0);
}

TEST(PairedRatio, PairsByRoundNotByPosition) {
  const record path = with_rates({{2, 1.0}, {1, 4.0}});
  const record raw = with_rates({{1, 2.0}, {2, 2.0}});
  EXPECT_DOUBLE_EQ(*paired_ratio(path, raw), (0.5 + 2.0) / 2);
}

TEST(PairedRatio, IsAbsentWithoutASharedRound) {
  EXPECT_FALSE(paired_ratio(with_rates({{1, 1.0}}), with_rates({{2, 1.0}})).has_value());
  EXPECT_FALSE(paired_ratio(with_rates({{1, 1.0}}), with_rates({{1, 0.0}})).has_value());
}

}  // namespace
}  // namespace zcbench
