#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <pagewire/apps/http/target.h>

namespace pagewire::http {
namespace {

std::optional<std::string> resolve(std::string_view t) {
  std::vector<char> scratch(t.size());
  auto r = resolve_target(t, scratch);
  if (!r) return std::nullopt;
  return std::string(r->path);
}

TEST(ResolveTarget, RootIsEmptyPathWithTrailingSlash) {
  std::vector<char> s(8);
  auto r = resolve_target("/", s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->path, "");
  EXPECT_TRUE(r->trailing_slash);
}

TEST(ResolveTarget, PlainPathsAndQueryStripping) {
  EXPECT_EQ(resolve("/index.html"), "index.html");
  EXPECT_EQ(resolve("/a/b/c.css?v=3#frag"), "a/b/c.css");
  EXPECT_EQ(resolve("/docs/?q=/../../etc"), "docs");
  std::vector<char> s(16);
  EXPECT_TRUE(resolve_target("/docs/", s)->trailing_slash);
  EXPECT_FALSE(resolve_target("/docs", s)->trailing_slash);
}

// RFC 3986 §2.1: percent-decoding, exactly once.
TEST(ResolveTarget, DecodesPercentEncodingOnce) {
  EXPECT_EQ(resolve("/a%20b.txt"), "a b.txt");
  EXPECT_EQ(resolve("/%E2%82%AC"), "\xE2\x82\xAC");
  EXPECT_EQ(resolve("/%252e%252e/x"), "%2e%2e/x");
  EXPECT_EQ(resolve("/a%2fb"), "a/b");
  EXPECT_FALSE(resolve("/a%2"));
  EXPECT_FALSE(resolve("/a%zz"));
  EXPECT_FALSE(resolve("/a%"));
}

TEST(ResolveTarget, DropsDotAndEmptySegments) {
  EXPECT_EQ(resolve("//etc/passwd"), "etc/passwd");
  EXPECT_EQ(resolve("/./a/./b/"), "a/b");
  EXPECT_EQ(resolve("/a//b///c"), "a/b/c");
  EXPECT_EQ(resolve("/..."), "...");
  EXPECT_EQ(resolve("/a..b/..c"), "a..b/..c");
}

// Decoding and normalizing happen in one pass: an escaped '?' or '#' is part of the path,
// an escaped '/' separates segments, and a "." made of an escape is dropped like a literal.
TEST(ResolveTarget, EscapedDelimitersInOnePass) {
  EXPECT_EQ(resolve("/a%3Fb?c"), "a?b");
  EXPECT_EQ(resolve("/a%23b#c"), "a#b");
  EXPECT_EQ(resolve("/a/%2e/b"), "a/b");
  EXPECT_EQ(resolve("/a%2f%2fb%2f"), "a/b");
  EXPECT_EQ(resolve("/a/.?x"), "a");
  EXPECT_FALSE(resolve("/a/..?x"));
  EXPECT_FALSE(resolve("/a/%2e.#x"));
  std::vector<char> s(16);
  EXPECT_TRUE(resolve_target("/a%2f", s)->trailing_slash);
  EXPECT_FALSE(resolve_target("/a/.", s)->trailing_slash);
  EXPECT_EQ(resolve_target("/a/.", s)->path, "a");
}

// The security corpus of issue 7 at the path level: rejected, or under the root.
TEST(ResolveTarget, SecurityCorpus) {
  EXPECT_FALSE(resolve("/../etc/passwd"));
  EXPECT_FALSE(resolve("/%2e%2e/"));
  EXPECT_FALSE(resolve("/%2E%2E/etc/passwd"));
  EXPECT_FALSE(resolve("/.%2e/"));
  EXPECT_FALSE(resolve("/..%2f"));
  EXPECT_FALSE(resolve("/a/b/../../../x"));
  EXPECT_FALSE(resolve("/a%00b"));
  EXPECT_FALSE(resolve("../x"));
  EXPECT_FALSE(resolve("/a\\..\\b"));
  EXPECT_FALSE(resolve("/a%5c..%5cb"));
  EXPECT_FALSE(resolve("/a%0d%0aX: y"));
  EXPECT_EQ(resolve("/%252e%252e/"), "%2e%2e");  // a literal name, harmless
  EXPECT_EQ(resolve("//etc/passwd"), "etc/passwd");
  EXPECT_EQ(resolve("/%2fetc/passwd"), "etc/passwd");
}

// RFC 9112 §3.2: origin-form and absolute-form; others rejected.
TEST(ResolveTarget, RequestTargetForms) {
  EXPECT_EQ(resolve("http://example.com/a/b"), "a/b");
  EXPECT_EQ(resolve("HTTPS://example.com/a?x"), "a");
  EXPECT_EQ(resolve("http://example.com"), "");
  EXPECT_EQ(resolve("http://example.com?x=/../"), "");
  EXPECT_FALSE(resolve("http:///a"));
  EXPECT_FALSE(resolve("http://h/../x"));
  EXPECT_FALSE(resolve("*"));
  EXPECT_FALSE(resolve("example.com:443"));
  EXPECT_FALSE(resolve("a/b"));
  EXPECT_FALSE(resolve(""));
}

TEST(ResolveTarget, ScratchSmallerThanTargetIsRejected) {
  std::vector<char> s(3);
  EXPECT_FALSE(resolve_target("/abcd", s));
}

}  // namespace
}  // namespace pagewire::http
