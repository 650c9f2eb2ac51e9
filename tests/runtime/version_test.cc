#include <string>

#include <gtest/gtest.h>

#include <pagewire/runtime/version.h>

namespace pagewire {
namespace {

TEST(Version, StringMatchesNumericParts) {
  const std::string expected = std::to_string(kVersionMajor) + "." + std::to_string(kVersionMinor) +
                               "." + std::to_string(kVersionPatch);
  EXPECT_EQ(kVersion, expected);
}

}  // namespace
}  // namespace pagewire
