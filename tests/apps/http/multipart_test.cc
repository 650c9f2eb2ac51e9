#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/multipart.h>

namespace pagewire::http {
namespace {

// RFC 9110 §14.6: the whole body assembled from the plan, byte for byte.
TEST(Multipart, PlanProducesExactBodyAndLength) {
  const std::string file = "0123456789abcdefghij";
  const byte_range ranges[] = {{0, 3}, {10, 5}};
  multipart_plan plan(ranges, file.size(), "text/plain", "BOUND");
  EXPECT_EQ(plan.content_type(), "multipart/byteranges; boundary=BOUND");
  std::string body;
  for (const auto& p : plan.parts())
    body += std::string(p.head) + file.substr(p.file_offset, p.file_length);
  body += plan.closing();
  EXPECT_EQ(body,
            "--BOUND\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-2/20\r\n\r\n012"
            "\r\n--BOUND\r\nContent-Type: text/plain\r\nContent-Range: bytes 10-14/20\r\n\r\n"
            "abcde"
            "\r\n--BOUND--\r\n");
  EXPECT_EQ(plan.content_length(), body.size());
}

TEST(Multipart, SurvivesMoves) {
  const byte_range ranges[] = {{0, 1}, {2, 1}};
  multipart_plan a(ranges, 3, "x/y", "b");
  const std::string head0(a.parts()[0].head);
  multipart_plan b(std::move(a));
  EXPECT_EQ(b.parts()[0].head, head0);
  multipart_plan c(ranges, 3, "x/y", "other");
  c = std::move(b);
  EXPECT_EQ(c.parts()[0].head, head0);
  EXPECT_EQ(c.closing(), "\r\n--b--\r\n");
}

TEST(Multipart, BoundariesDifferPerSeedAndAreBchars) {
  const auto a = make_boundary(1), b = make_boundary(2);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 20u);
  for (char c : a)
    EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)));
}

}  // namespace
}  // namespace pagewire::http
