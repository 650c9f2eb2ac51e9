#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/apps/http/etag.h>
#include <pagewire/apps/http/response_head.h>

namespace pagewire::http {
namespace {

// Every field build_head can write, with long variable parts.
response every_field() {
  response r;
  r.status = status::range_not_satisfiable;
  r.version = http_version::http10;
  r.keep_alive = true;
  r.coding = content_coding::zstd;
  r.content_length = UINT64_MAX;
  r.content_type = "multipart/byteranges; boundary=0123456789abcdef0123456789abcdef";
  r.etag = etag::make(UINT64_MAX, UINT64_MAX, INT64_MAX, content_coding::zstd);
  r.last_modified = 253402300799;  // 9999-12-31T23:59:59Z
  r.accept_ranges = true;
  r.vary_accept_encoding = true;
  r.allow = true;
  r.location = "/a-directory-name-of-some-length/?with=a&query=string";
  r.range = content_range{false, UINT64_MAX - 1, UINT64_MAX, UINT64_MAX};
  return r;
}

TEST(ResponseHead, WritesEveryFieldInOrder) {
  const head_context hc{"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"};
  std::vector<char> buf(4096);
  const auto n = build_head(every_field(), hc, buf);
  ASSERT_TRUE(n);
  const std::string head(buf.data(), *n);
  EXPECT_EQ(head.rfind("HTTP/1.1 416 Range Not Satisfiable\r\nDate: Sun, 06 Nov 1994", 0), 0u);
  EXPECT_NE(head.find("Content-Length: 18446744073709551615\r\n"), std::string::npos);
  EXPECT_NE(head.find("Last-Modified: Fri, 31 Dec 9999 23:59:59 GMT\r\n"), std::string::npos);
  EXPECT_NE(head.find("Content-Range: bytes 18446744073709551614-18446744073709551615/"
                      "18446744073709551615\r\n"),
            std::string::npos);
  EXPECT_NE(head.find("Content-Encoding: zstd\r\nVary: Accept-Encoding\r\nAllow: GET, HEAD\r\n"
                      "Location: /a-directory-name-of-some-length/?with=a&query=string\r\n"
                      "Connection: keep-alive\r\n\r\n"),
            std::string::npos);
}

// build_head checks room once when the buffer is clearly large enough and per copy
// otherwise: every buffer size gives the same head, or nullopt when it does not fit.
TEST(ResponseHead, EveryBufferSizeGivesTheWholeHeadOrNothing) {
  const head_context hc{"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"};
  for (const response& r : {every_field(), response{}}) {
    std::vector<char> big(4096);
    const auto full = build_head(r, hc, big);
    ASSERT_TRUE(full);
    const std::string expected(big.data(), *full);
    for (std::size_t size = 0; size <= *full + 600; ++size) {
      std::vector<char> buf(size + 1, '#');  // one guard byte past the span
      const auto n = build_head(r, hc, std::span<char>(buf.data(), size));
      if (size < *full) {
        EXPECT_FALSE(n) << size;
      } else {
        ASSERT_TRUE(n) << size;
        EXPECT_EQ(std::string(buf.data(), *n), expected) << size;
      }
      EXPECT_EQ(buf[size], '#') << "wrote past the span of " << size;
    }
  }
}

}  // namespace
}  // namespace pagewire::http
