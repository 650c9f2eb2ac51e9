// runtime/log.h: pagewire's notices go to the installed handler (and then not to stderr),
// back to stderr after set_log_handler(nullptr), and a long line is cut, not lost.

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/log.h>

namespace pagewire::runtime {
namespace {

std::mutex g_mu;
std::vector<std::string> g_lines;

void capture(std::string_view line) {
  std::lock_guard lock(g_mu);
  g_lines.emplace_back(line);
}

void ignore(std::string_view) {}

std::vector<std::string> take_lines() {
  std::lock_guard lock(g_mu);
  return std::exchange(g_lines, {});
}

// The fallback notice is said once per process: this is the only test that makes one.
TEST(Log, TheFallbackNoticeGoesToTheHandlerAndNotToStderr) {
  set_log_handler(capture);
  ::testing::internal::CaptureStderr();
  {
    context_options o;
    o.backend = backend_kind::fallback;
    context ctx(o);
    bool ran = false;
    ctx.post([&] { ran = true; });
    ctx.run();
    EXPECT_TRUE(ran);
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  set_log_handler(nullptr);
  EXPECT_EQ(err, "");
  const auto lines = take_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("using the epoll fallback"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[0].find("pagewire: "), std::string::npos) << "the handler gets no prefix";
  EXPECT_NE(lines[0].back(), '\n');
}

TEST(Log, WithoutAHandlerALineGoesToStderrWithThePrefix) {
  set_log_handler(nullptr);
  ::testing::internal::CaptureStderr();
  log_line("%d operations in flight", 3);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "pagewire: 3 operations in flight\n");
  EXPECT_TRUE(take_lines().empty());
}

TEST(Log, AHandlerThatDoesNothingSilencesEveryLine) {
  set_log_handler(ignore);
  ::testing::internal::CaptureStderr();
  log_line("nobody hears this");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  set_log_handler(nullptr);
}

TEST(Log, ALongLineIsCutNotDropped) {
  set_log_handler(capture);
  const std::string long_text(2000, 'x');
  log_line("start %s", long_text.c_str());
  set_log_handler(nullptr);
  const auto lines = take_lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("start xxx", 0), 0u);
  EXPECT_GT(lines[0].size(), 400u);
  EXPECT_LT(lines[0].size(), 2000u);
}

}  // namespace
}  // namespace pagewire::runtime
