#include <gtest/gtest.h>

#include <pagewire/apps/http/accept_encoding.h>

namespace pagewire::http {
namespace {

constexpr content_coding kBoth[] = {content_coding::zstd, content_coding::gzip};
constexpr content_coding kGzip[] = {content_coding::gzip};
using ae = std::optional<std::string_view>;

std::optional<content_coding> pick(ae field, std::span<const content_coding> avail = kBoth) {
  return negotiate_encoding(field, avail);
}

// RFC 9110 §12.5.3.
TEST(AcceptEncoding, AbsentFieldMeansIdentity) {
  EXPECT_EQ(pick(std::nullopt), content_coding::identity);
}

TEST(AcceptEncoding, EmptyFieldMeansIdentityOnly) {
  EXPECT_EQ(pick(ae("")), content_coding::identity);
}

TEST(AcceptEncoding, ServerOrderBreaksTies) {
  EXPECT_EQ(pick(ae("gzip, deflate, br, zstd")), content_coding::zstd);
  EXPECT_EQ(pick(ae("gzip, deflate, br")), content_coding::gzip);
  EXPECT_EQ(pick(ae("gzip, zstd"), kGzip), content_coding::gzip);
}

TEST(AcceptEncoding, QValuesDecide) {
  EXPECT_EQ(pick(ae("zstd;q=0.5, gzip;q=0.8")), content_coding::gzip);
  EXPECT_EQ(pick(ae("zstd;q=1.0, gzip;q=0.999")), content_coding::zstd);
  EXPECT_EQ(pick(ae("identity;q=1, gzip;q=0.5")), content_coding::identity);
  EXPECT_EQ(pick(ae("gzip;q=0.001")), content_coding::gzip);  // beats unlisted identity
}

TEST(AcceptEncoding, QZeroRefuses) {
  EXPECT_EQ(pick(ae("gzip;q=0, zstd;q=0")), content_coding::identity);
  EXPECT_EQ(pick(ae("zstd;q=0.000")), content_coding::identity);
}

TEST(AcceptEncoding, CaseInsensitiveAndXGzip) {
  EXPECT_EQ(pick(ae("GZIP")), content_coding::gzip);
  EXPECT_EQ(pick(ae("x-gzip")), content_coding::gzip);
  EXPECT_EQ(pick(ae("ZStd;Q=0.3")), content_coding::zstd);
}

TEST(AcceptEncoding, StarCoversUnlistedCodings) {
  EXPECT_EQ(pick(ae("*")), content_coding::zstd);
  EXPECT_EQ(pick(ae("zstd;q=0, *")), content_coding::gzip);
  EXPECT_EQ(pick(ae("*;q=0.5, identity")), content_coding::identity);
}

TEST(AcceptEncoding, IdentityRefusals) {
  EXPECT_EQ(pick(ae("identity;q=0")), std::nullopt);
  EXPECT_EQ(pick(ae("*;q=0")), std::nullopt);
  EXPECT_EQ(pick(ae("*;q=0, identity")), content_coding::identity);
  EXPECT_EQ(pick(ae("*;q=0, gzip")), content_coding::gzip);
  EXPECT_EQ(pick(ae("identity;q=0, br"), kGzip), std::nullopt);
  EXPECT_EQ(pick(ae("identity;q=0, gzip"), {}), std::nullopt);
}

TEST(AcceptEncoding, MalformedElementsAreSkipped) {
  EXPECT_EQ(pick(ae("gzip;q=2, zstd;q=abc")), content_coding::identity);
  EXPECT_EQ(pick(ae("gzip;q, zstd;q=0.5;level")), content_coding::identity);
  EXPECT_EQ(pick(ae("gzip;q=0.12345")), content_coding::identity);
  EXPECT_EQ(pick(ae("g(zip, gzip;foo=bar")), content_coding::gzip);
}

}  // namespace
}  // namespace pagewire::http
