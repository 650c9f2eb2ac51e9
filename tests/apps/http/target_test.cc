#include <random>
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
  // RFC 3986 §5.2.4: "/a/." is "/a/", so a file cannot be named "/file/." where "/file/" is not.
  EXPECT_TRUE(resolve_target("/a/.", s)->trailing_slash);
  EXPECT_TRUE(resolve_target("/a/%2e?x", s)->trailing_slash);
  EXPECT_TRUE(resolve_target("/.", s)->trailing_slash);
  EXPECT_FALSE(resolve_target("/a/.b", s)->trailing_slash);
  EXPECT_EQ(resolve_target("/a/.", s)->path, "a");
}

std::optional<std::string> location(std::string_view target) {
  std::vector<char> s(target.size());
  const auto r = resolve_target(target, s);
  if (!r) return std::nullopt;
  std::string out = "stale";
  if (!directory_location(target, r->path, out)) return std::nullopt;
  return out;
}

// The 301 for a directory named without its '/': the normalized path, the slash, then the
// query; the fragment is dropped.
TEST(DirectoryLocation, AddsTheSlashBeforeTheQuery) {
  EXPECT_EQ(location("/docs"), "/docs/");
  EXPECT_EQ(location("/a/b?x=1&y=/z"), "/a/b/?x=1&y=/z");
  EXPECT_EQ(location("/a%20b#frag"), "/a%20b/");
  EXPECT_EQ(location("/a?q#frag"), "/a/?q");
  EXPECT_EQ(location("/a#frag?not-a-query"), "/a/");
  EXPECT_EQ(location("/a/./b//c%2fd"), "/a/b/c/d/");
  EXPECT_EQ(location("http://host:8080/docs?v=2"), "/docs/?v=2");
  EXPECT_EQ(location("HTTPS://host/docs"), "/docs/");
  std::string out;
  EXPECT_FALSE(directory_location("docs", "docs", out));
  EXPECT_FALSE(directory_location("*", "", out));
  EXPECT_FALSE(directory_location("http:///docs", "docs", out));
}

// "//host" is a network-path reference (RFC 3986 §4.2), and browsers read "///host" alike: a
// Location starting so would send the client to another host. Built from the normalized
// path, it names the directory on this server.
TEST(DirectoryLocation, NeverStartsWithTwoSlashes) {
  EXPECT_EQ(location("//evil.example"), "/evil.example/");
  EXPECT_EQ(location("///evil.example?x=1"), "/evil.example/?x=1");
  EXPECT_EQ(location("http://x//evil.example"), "/evil.example/");
  EXPECT_EQ(location("/%2f%2Fevil.example"), "/evil.example/");
  EXPECT_EQ(location("/./evil.example"), "/evil.example/");
}

// A byte that a URI may not hold is escaped: the Location stays one valid field value
// whatever the target held (the parser admits any visible ASCII byte). The path keeps only
// unreserved bytes; the query keeps what a query may hold.
TEST(DirectoryLocation, EscapesBytesAUriMayNotHold) {
  EXPECT_EQ(location("/a\"<b>{c}|^`[d]?q=\"x\""), "/a%22%3Cb%3E%7Bc%7D%7C%5E%60%5Bd%5D/?q=%22x%22");
  EXPECT_EQ(location("/~user/-._!$&'()*+,;=:@%41"),
            "/~user/-._%21%24%26%27%28%29%2A%2B%2C%3B%3D%3A%40A/");
  EXPECT_EQ(location("/caf\xC3\xA9"), "/caf%C3%A9/");
}

// A file name becomes one path segment: every byte but the unreserved ones is escaped, '%'
// and the delimiters included, so the name cannot turn into a query, a fragment or an escape.
TEST(PercentEncoded, NameKeepsOnlyUnreservedBytes) {
  std::string out = "x/";
  append_percent_encoded(out, "a b%20?c#d;e&f'g\\h\xC3\xA9~-._", uri_bytes::name);
  EXPECT_EQ(out, "x/a%20b%2520%3Fc%23d%3Be%26f%27g%5Ch%C3%A9~-._");
}

TEST(PercentEncoded, UriKeepsWhatAPathAndQueryMayHold) {
  std::string out;
  append_percent_encoded(out, "/a%20b?q=1&r=(2)", uri_bytes::uri);
  EXPECT_EQ(out, "/a%20b?q=1&r=(2)");
  out.clear();
  append_percent_encoded(out, std::string_view("\0 \x7f\xff", 4), uri_bytes::uri);
  EXPECT_EQ(out, "%00%20%7F%FF");
}

// A listing's href for any name a file may have (no '/', no NUL) names that file again:
// percent-decoding the href gives the name back, whatever bytes it holds. Names that
// resolve_target refuses for every spelling (control bytes, a backslash, "..") are left out.
TEST(PercentEncoded, NamesRoundTripThroughResolveTarget) {
  std::mt19937 rng(5);
  for (int i = 0; i < 2000; ++i) {
    std::string name(1 + rng() % 12, ' ');
    for (char& c : name) {
      do {
        c = static_cast<char>(0x20 + rng() % 0xe0);
      } while (c == '/' || c == '\\' || c == 0x7f);
    }
    if (name == "." || name == "..") continue;
    std::string href = "/";
    append_percent_encoded(href, name, uri_bytes::name);
    EXPECT_EQ(resolve(href), name) << href;
  }
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
  // RFC 9110 §4.2.4: userinfo in the authority is an error; an '@' in the path is not.
  EXPECT_FALSE(resolve("http://user:pw@example.com/a"));
  EXPECT_FALSE(resolve("http://@example.com/a"));
  EXPECT_FALSE(resolve("https://user@example.com"));
  EXPECT_EQ(resolve("http://example.com/a@b"), "a@b");
  EXPECT_EQ(resolve("http://example.com?to=a@b"), "");
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
