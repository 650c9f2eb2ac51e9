#include <cerrno>
#include <system_error>

#include <gtest/gtest.h>

#include <pagewire/runtime/sys_error.h>

namespace pagewire::runtime {
namespace {

TEST(sys_error, no_error_equals_a_default_error_code) {
  EXPECT_EQ(no_error(), std::error_code{});
  EXPECT_FALSE(no_error());
  EXPECT_EQ(&no_error().category(), &std::system_category());
}

TEST(sys_error, errno_values_are_in_the_system_category) {
  const std::error_code ec = sys_error(ECONNRESET);
  EXPECT_EQ(ec, std::error_code(ECONNRESET, std::system_category()));
  EXPECT_EQ(ec, std::errc::connection_reset);  // compares with the portable condition
  EXPECT_EQ(ec.message(), std::error_code(ECONNRESET, std::system_category()).message());
}

}  // namespace
}  // namespace pagewire::runtime
