#include <cctype>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>

#include <gtest/gtest.h>

#include <pagewire/apps/http/request_parser.h>

namespace pagewire::http {
namespace {

constexpr std::string_view kBrowserGet =
    "GET /index.html?x=1 HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://example.com/\r\n"
    "Connection: keep-alive\r\n"
    "If-None-Match: \"abc\"\r\n"
    "\r\n";

parse_result feed_all(request_parser& p, std::string_view s) {
  return p.feed(std::span<const char>(s.data(), s.size()));
}

// Feeds one byte at a time; returns the first non-need_more result and the total consumed.
parse_result feed_bytewise(request_parser& p, std::string_view s) {
  std::size_t used = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto r = p.feed(std::span<const char>(s.data() + i, 1));
    used += r.consumed;
    if (r.state != parse_state::need_more) return {r.state, used};
  }
  return {parse_state::need_more, used};
}

status error_of(std::string_view s, parser_limits limits = {}) {
  request_parser p(limits);
  const auto r = feed_all(p, s);
  EXPECT_EQ(r.state, parse_state::error) << s;
  return p.error_status();
}

// RFC 9112 §3: request-line; §5: field lines.
TEST(RequestParser, ParsesTypicalBrowserGet) {
  request_parser p;
  const auto r = feed_all(p, kBrowserGet);
  ASSERT_EQ(r.state, parse_state::done);
  EXPECT_EQ(r.consumed, kBrowserGet.size());
  const request& q = p.get();
  EXPECT_EQ(q.method, method::get);
  EXPECT_EQ(q.method_name, "GET");
  EXPECT_EQ(q.target, "/index.html?x=1");
  EXPECT_EQ(q.version, http_version::http11);
  EXPECT_EQ(q.host, "example.com");
  EXPECT_EQ(q.accept_encoding, std::optional<std::string_view>("gzip, deflate, br"));
  EXPECT_EQ(q.if_none_match, "\"abc\"");
  EXPECT_EQ(q.referer, "https://example.com/");
  EXPECT_EQ(q.request_line, "GET /index.html?x=1 HTTP/1.1");
  EXPECT_TRUE(q.keep_alive);
  EXPECT_EQ(q.fields.size(), 8u);
  EXPECT_EQ(q.fields[1].name, "User-Agent");
}

TEST(RequestParser, ByteByByteEqualsWhole) {
  request_parser whole, bytewise;
  const auto a = feed_all(whole, kBrowserGet);
  const auto b = feed_bytewise(bytewise, kBrowserGet);
  ASSERT_EQ(a.state, parse_state::done);
  ASSERT_EQ(b.state, parse_state::done);
  EXPECT_EQ(a.consumed, b.consumed);
  const request& x = whole.get();
  const request& y = bytewise.get();
  EXPECT_EQ(x.request_line, y.request_line);
  EXPECT_EQ(x.host, y.host);
  EXPECT_EQ(x.accept_encoding, y.accept_encoding);
  EXPECT_EQ(x.user_agent, y.user_agent);
  ASSERT_EQ(x.fields.size(), y.fields.size());
  for (std::size_t i = 0; i < x.fields.size(); ++i) {
    EXPECT_EQ(x.fields[i].name, y.fields[i].name);
    EXPECT_EQ(x.fields[i].value, y.fields[i].value);
  }
}

TEST(RequestParser, EverySplitPointGivesTheSameRequest) {
  for (std::size_t cut = 0; cut <= kBrowserGet.size(); ++cut) {
    request_parser p;
    const auto r1 = feed_all(p, kBrowserGet.substr(0, cut));
    std::size_t used = r1.consumed;
    parse_result r2 = r1;
    if (r1.state == parse_state::need_more) {
      r2 = feed_all(p, kBrowserGet.substr(cut));
      used += r2.consumed;
    }
    ASSERT_EQ(r2.state, parse_state::done) << cut;
    EXPECT_EQ(used, kBrowserGet.size());
    EXPECT_EQ(p.get().user_agent.substr(0, 11), "Mozilla/5.0");
  }
}

TEST(RequestParser, ViewsSurviveReuseOfTheInputBuffer) {
  request_parser p;
  std::string buf(kBrowserGet);
  ASSERT_EQ(feed_all(p, buf).state, parse_state::done);
  std::fill(buf.begin(), buf.end(), 'X');  // the ring recycles the chunk
  EXPECT_EQ(p.get().host, "example.com");
}

// RFC 9112 §9.3: pipelined requests; consumed leaves the rest for the next one.
TEST(RequestParser, PipelinedRequestsAreConsumedOneAtATime) {
  const std::string stream =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
      "HEAD /b HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  request_parser p;
  std::string_view rest(stream);
  const char* expected[] = {"/a", "/b", "/c"};
  for (const char* t : expected) {
    const auto r = feed_all(p, rest);
    ASSERT_EQ(r.state, parse_state::done);
    EXPECT_EQ(p.get().target, t);
    rest.remove_prefix(r.consumed);
    if (std::string_view(t) == "/b") {
      EXPECT_EQ(p.get().method, method::head);
    }
    if (std::string_view(t) == "/c") {
      EXPECT_FALSE(p.get().keep_alive);
    }
    p.reset();
  }
  EXPECT_TRUE(rest.empty());
}

TEST(RequestParser, NothingIsConsumedAfterDoneUntilReset) {
  request_parser p;
  const std::string two = "GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n";
  const auto r = feed_all(p, two);
  ASSERT_EQ(r.state, parse_state::done);
  const auto again = feed_all(p, std::string_view(two).substr(r.consumed));
  EXPECT_EQ(again.state, parse_state::done);
  EXPECT_EQ(again.consumed, 0u);
}

// RFC 9112 §6.3 (6): a Content-Length body is read (here: discarded) before the next request.
TEST(RequestParser, DiscardsContentLengthBodyThenStops) {
  const std::string s = "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET";
  request_parser whole;
  const auto r = feed_all(whole, s);
  ASSERT_EQ(r.state, parse_state::done);
  EXPECT_EQ(r.consumed, s.size() - 3);
  EXPECT_EQ(whole.get().content_length, 5u);
  request_parser bytewise;
  const auto b = feed_bytewise(bytewise, s);
  ASSERT_EQ(b.state, parse_state::done);
  EXPECT_EQ(b.consumed, s.size() - 3);
}

// RFC 9110 §10.1.1: the 100 (Continue) is due once the head is in and the content is not,
// once per request, only for HTTP/1.1, and only for the 100-continue expectation.
TEST(RequestParser, ExpectContinueIsTakenOnceWhileTheContentIsOwed) {
  const std::string head =
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n";
  request_parser p;
  EXPECT_FALSE(p.take_continue());
  ASSERT_EQ(feed_all(p, head.substr(0, head.size() - 2)).state, parse_state::need_more);
  EXPECT_FALSE(p.take_continue()) << "the head is not complete yet";
  ASSERT_EQ(feed_all(p, "\r\nhe").state, parse_state::need_more);
  EXPECT_TRUE(p.take_continue());
  EXPECT_FALSE(p.take_continue()) << "once";
  ASSERT_EQ(feed_all(p, "llo").state, parse_state::done);
  p.reset();
  ASSERT_EQ(feed_all(p,
                     "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                     "Expect: foo, 100-continue\r\n\r\n")
                .state,
            parse_state::need_more);
  EXPECT_TRUE(p.take_continue()) << "a list member";
  for (const char* other : {
           "POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 200-ok\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n",
       }) {
    p.reset();
    ASSERT_EQ(feed_all(p, other).state, parse_state::need_more) << other;
    EXPECT_FALSE(p.take_continue()) << other;
  }
  p.reset();  // no content: the final response is the answer
  ASSERT_EQ(feed_all(p, "GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n").state,
            parse_state::done);
  EXPECT_FALSE(p.take_continue());
}

// RFC 9112 §3.2: a Host field with an invalid value is a 400, like a missing or repeated
// one; every form of RFC 3986's host and port passes, and so does an empty value.
TEST(RequestParser, HostMustBeAUriHostAndPort) {
  for (const char* ok : {"example.com", "example.com:8080", "127.0.0.1:80", "[::1]", "[::1]:443",
                         "[v1.x:y]", "a-b.c_d~e", "%41b", "x:", "", "!$&'()*+,;="}) {
    request_parser p;
    const std::string s = std::string("GET / HTTP/1.1\r\nHost: ") + ok + "\r\n\r\n";
    ASSERT_EQ(feed_all(p, s).state, parse_state::done) << ok;
    EXPECT_EQ(p.get().host, ok);
  }
  for (const char* bad : {"a b", "a/b", "a@b", "a:b:c", "a:8o", "[::1", "[::1]x", "[::1]:x", "[]",
                          "[]:80", "%4", "%zz", "a?b", "a#b", "\"a\"", "\xC3\xA9"}) {
    EXPECT_EQ(error_of(std::string("GET / HTTP/1.1\r\nHost: ") + bad + "\r\n\r\n"),
              status::bad_request)
        << bad;
  }
}

TEST(RequestParser, StartedTracksTheFirstByte) {
  request_parser p;
  EXPECT_FALSE(p.started());
  feed_all(p, "G");
  EXPECT_TRUE(p.started());
  p.reset();
  EXPECT_FALSE(p.started());
}

// RFC 9112 §2.2: empty lines before the request line are ignored; bare LF ends a line.
TEST(RequestParser, IgnoresLeadingEmptyLinesAndAcceptsBareLf) {
  request_parser p;
  ASSERT_EQ(feed_all(p, "\r\n\nGET / HTTP/1.1\nHost: h\n\n").state, parse_state::done);
  EXPECT_EQ(p.get().target, "/");
}

// RFC 9112 §9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
TEST(RequestParser, KeepAliveDefaultsPerVersion) {
  struct {
    const char* req;
    bool keep;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
      {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
  };
  for (const auto& c : cases) {
    request_parser p;
    ASSERT_EQ(feed_all(p, c.req).state, parse_state::done) << c.req;
    EXPECT_EQ(p.get().keep_alive, c.keep) << c.req;
  }
}

// RFC 9110 §6.2: HTTP/1.x with x > 1 is handled as 1.1; another major -> 505.
TEST(RequestParser, VersionHandling) {
  request_parser p;
  ASSERT_EQ(feed_all(p, "GET / HTTP/1.9\r\nHost: h\r\n\r\n").state, parse_state::done);
  EXPECT_EQ(p.get().version, http_version::http11);
  EXPECT_EQ(error_of("GET / HTTP/2.0\r\n\r\n"), status::http_version_not_supported);
  EXPECT_EQ(error_of("GET / HTTP/1.10\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / http/1.1\r\n\r\n"), status::bad_request);
}

// RFC 9110 §9.1: methods are case-sensitive; the ones the server knows and refuses parse as
// `other` (405), any other token as `unknown` (501).
TEST(RequestParser, OtherMethodsParseForA405AndUnknownOnesForA501) {
  for (const char* m : {"POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}) {
    request_parser p;
    const std::string s = std::string(m) + " /x HTTP/1.1\r\nHost: h\r\n\r\n";
    ASSERT_EQ(feed_all(p, s).state, parse_state::done) << m;
    EXPECT_EQ(p.get().method, method::other) << m;
    EXPECT_EQ(p.get().method_name, m);
  }
  for (const char* m : {"get", "Head", "FOO", "PROPFIND", "POSTX", "GE"}) {
    request_parser p;
    const std::string s = std::string(m) + " /x HTTP/1.1\r\nHost: h\r\n\r\n";
    ASSERT_EQ(feed_all(p, s).state, parse_state::done) << m;
    EXPECT_EQ(p.get().method, method::unknown) << m;
  }
}

// RFC 9112 §3: malformed request lines -> 400.
TEST(RequestParser, RejectsMalformedRequestLines) {
  for (const char* s :
       {"GET\r\n\r\n", "GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
        "G(T / HTTP/1.1\r\n\r\n", "GET /a\x01 HTTP/1.1\r\n\r\n", " GET / HTTP/1.1\r\n\r\n"}) {
    EXPECT_EQ(error_of(s), status::bad_request) << s;
  }
}

// The request line and field names are scanned in one pass each; a straightforward
// reading of the grammar (split at the first spaces / the first colon, then validate
// each part) must agree with it on every line of a small, dense alphabet.
std::optional<status> reference_request_line(std::string_view line) {
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return status::bad_request;
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return status::bad_request;
  const auto m = line.substr(0, sp1);
  const auto t = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto v = line.substr(sp2 + 1);
  if (m.empty() || t.empty()) return status::bad_request;
  for (char c : m)
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
      return status::bad_request;
  for (char c : t)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return status::bad_request;
  if (v.size() != 8 || v.substr(0, 5) != "HTTP/" || !std::isdigit(v[5]) || v[6] != '.' ||
      !std::isdigit(v[7]))
    return status::bad_request;
  if (v[5] != '1') return status::http_version_not_supported;
  return std::nullopt;
}

TEST(RequestParser, OnePassRequestLineAgreesWithTheGrammar) {
  static constexpr char kAlphabet[] = {'G',    'E',    'T',    ' ', '/', 'a', '\t',
                                       '\x01', '\x7f', '\x80', '(', ':', '%', '.'};
  static constexpr std::string_view kVersions[] = {"HTTP/1.1", "HTTP/1.0", "HTTP/1.2",  "HTTP/2.0",
                                                   "http/1.1", "HTTP/1.",  "HTTP/1.1 ", ""};
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string line;
    const int len = static_cast<int>(rng() % 9);
    for (int k = 0; k < len; ++k)
      line += kAlphabet[rng() % sizeof kAlphabet];
    if (rng() % 2) line += ' ';
    line += kVersions[rng() % std::size(kVersions)];
    request_parser p;
    const auto r = feed_all(p, line + "\r\nHost: h\r\n\r\n");
    const auto expected = reference_request_line(line);
    if (expected) {
      ASSERT_EQ(r.state, parse_state::error) << line;
      EXPECT_EQ(p.error_status(), *expected) << line;
    } else {
      ASSERT_EQ(r.state, parse_state::done) << line;
      EXPECT_EQ(p.get().request_line, line);
    }
  }
}

TEST(RequestParser, OnePassFieldNameAgreesWithTheGrammar) {
  static constexpr char kAlphabet[] = {'H', 'o', 's', 't', ':', ' ', '\t', '(', '_', 'x', '\x80'};
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) {
    std::string name;
    const int len = static_cast<int>(rng() % 7);
    for (int k = 0; k < len; ++k)
      name += kAlphabet[rng() % sizeof kAlphabet];
    const std::string line = "X" + name + ": v";  // never starts with OWS
    const auto colon = line.find(':');
    bool valid = true;
    for (std::size_t k = 0; k < colon; ++k) {
      const char c = line[k];
      valid = valid && (std::isalnum(static_cast<unsigned char>(c)) ||
                        std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos);
    }
    request_parser p;
    const auto r = feed_all(p, "GET / HTTP/1.1\r\nHost: h\r\n" + line + "\r\n\r\n");
    if (!valid) {
      ASSERT_EQ(r.state, parse_state::error) << line;
      EXPECT_EQ(p.error_status(), status::bad_request) << line;
    } else {
      ASSERT_EQ(r.state, parse_state::done) << line;
      EXPECT_EQ(p.get().fields.back().name, line.substr(0, colon));
    }
  }
}

// RFC 9112 §5.2: obs-fold -> 400.
TEST(RequestParser, RejectsObsFold) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\tHost: h\r\n\r\n"), status::bad_request);
}

// RFC 9112 §2.2: a bare CR is invalid.
TEST(RequestParser, RejectsBareCr) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET /\r HTTP/1.1\r\nHost: h\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\r\n\r\n"), status::bad_request);
}

// Lines ended by CR alone never bring an LF: the 400 comes as soon as the byte after the
// CR does, whole or byte by byte, not at the header timeout. A CR that is the last byte so
// far may still be followed by its LF.
TEST(RequestParser, RejectsBareCrBeforeAnyLf) {
  const std::string_view cr_only = "GET / HTTP/1.1\rHost: h\r\r";
  request_parser whole;
  EXPECT_EQ(feed_all(whole, cr_only).state, parse_state::error);
  EXPECT_EQ(whole.error_status(), status::bad_request);
  request_parser bytewise;
  const auto r = feed_bytewise(bytewise, cr_only);
  EXPECT_EQ(r.state, parse_state::error);
  EXPECT_EQ(r.consumed, std::string_view("GET / HTTP/1.1\r").size());  // the 'H' is refused
  request_parser split;
  EXPECT_EQ(feed_all(split, "GET / HTTP/1.1\r").state, parse_state::need_more);
  EXPECT_EQ(feed_all(split, "\nHost: h\r").state, parse_state::need_more);
  EXPECT_EQ(feed_all(split, "\n\r").state, parse_state::need_more);
  EXPECT_EQ(feed_all(split, "\n").state, parse_state::done);
  // A bare CR past the head limit is the limit's error, as it is byte by byte.
  parser_limits small;
  small.max_head_bytes = 16;
  EXPECT_EQ(error_of("GET /aaaaaaaaa\rb HTTP/1.1\r\n", small), status::bad_request);
  EXPECT_EQ(error_of("GET /aaaaaaaaaa\rb HTTP/1.1\r\n", small), status::uri_too_long);
}

// A complete line with a bare CR is a 400 whatever else it holds (a version we do not
// support, one field too many), as it is when the line comes byte by byte and the CR is
// seen before its line ends.
TEST(RequestParser, BareCrIs400WhateverElseTheLineHolds) {
  parser_limits two;
  two.max_fields = 2;
  const std::pair<std::string, parser_limits> cases[] = {
      {"GET /a\rb HTTP/2.0\r\n\r\n", {}},
      {"GET /a HTTP/2.0\r\rX\r\n\r\n", {}},
      {"GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\rX\r\n\r\n", two},
      {"GET / HTTP/1.1\r\nContent-Length: 9999999999\rX\r\n\r\n", {}},
  };
  for (const auto& [s, limits] : cases) {
    EXPECT_EQ(error_of(s, limits), status::bad_request) << s;
    request_parser p(limits);
    EXPECT_EQ(feed_bytewise(p, s).state, parse_state::error) << s;
    EXPECT_EQ(p.error_status(), status::bad_request) << s;
  }
}

// RFC 9110 §5.5: NUL and other CTLs in field values are invalid.
TEST(RequestParser, RejectsNulInFieldValue) {
  static constexpr char kNul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
  EXPECT_EQ(error_of(std::string_view(kNul, sizeof kNul - 1)), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n"), status::bad_request);
}

// Values are checked eight bytes at a time: a CTL or DEL at any position of a long value
// is still caught, while TAB and obs-text (bytes from 0x80) pass wherever they are.
TEST(RequestParser, FieldValueCharsCheckedAtEveryPosition) {
  const std::string ok = "abcdefghijklmnopqrstuvwxyz0123";
  for (std::size_t i = 0; i < ok.size(); ++i) {
    for (const char bad : {'\x01', '\x1f', '\x7f', '\0', '\r'}) {
      std::string v = ok;
      v[i] = bad;
      EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + v + "\r\n\r\n"), status::bad_request)
          << i << " " << static_cast<int>(bad);
    }
    for (const char good : {'\t', '\x80', '\xff', ' ', '~'}) {
      std::string v = ok;
      v[i] = good;
      request_parser p;
      const std::string req = "GET / HTTP/1.1\r\nHost: h\r\nX: " + v + "\r\n\r\n";
      ASSERT_EQ(feed_all(p, req).state, parse_state::done) << i << " " << static_cast<int>(good);
    }
  }
}

// Field names are recognized by length and a case-folded compare: every casing matches,
// a same-length lookalike does not ('_' and '^' fold onto no letter).
TEST(RequestParser, FieldNamesMatchInAnyCaseButNotLookalikes) {
  for (const char* host : {"host", "HOST", "hOsT"}) {
    request_parser p;
    const std::string req = std::string("GET / HTTP/1.1\r\n") + host + ": h\r\n\r\n";
    ASSERT_EQ(feed_all(p, req).state, parse_state::done) << host;
    EXPECT_EQ(p.get().host, "h");
  }
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHos_: h\r\n\r\n"), status::bad_request);  // no Host
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost-: h\r\n\r\n"), status::bad_request);
  request_parser p;
  ASSERT_EQ(feed_all(p,
                     "GET / HTTP/1.1\r\nHost: h\r\nIF-NONE-MATCH: \"a\"\r\n"
                     "if-MODIFIED-since: x\r\nAccept-Encodin^: gzip\r\n"
                     "Connection: KEEP-ALIVE\r\nConnection: keep-alivf\r\n\r\n")
                .state,
            parse_state::done);
  EXPECT_EQ(p.get().if_none_match, "\"a\"");
  EXPECT_EQ(p.get().if_modified_since, "x");
  EXPECT_FALSE(p.get().accept_encoding.has_value());
  EXPECT_TRUE(p.get().keep_alive);
  request_parser q;
  ASSERT_EQ(feed_all(q, "GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n").state,
            parse_state::done);
  EXPECT_TRUE(q.get().keep_alive);
  request_parser r;
  ASSERT_EQ(feed_all(r, "GET / HTTP/1.0\r\nConnection: keep-alivf\r\n\r\n").state,
            parse_state::done);
  EXPECT_FALSE(r.get().keep_alive);
}

// RFC 9112 §5.1: no whitespace between field name and colon.
TEST(RequestParser, RejectsWhitespaceBeforeColon) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost : h\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"), status::bad_request);
}

// RFC 9110 §5.1: field-name is a token.
TEST(RequestParser, RejectsInvalidTokenCharsAndMissingColon) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHo(st: h\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n: h\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost h\r\n\r\n"), status::bad_request);
}

// RFC 9112 §3.2: Host required in 1.1; more than one -> 400.
TEST(RequestParser, HostRules) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), status::bad_request);
  EXPECT_EQ(error_of("GET / HTTP/1.0\r\nHost: a\r\nhost: a\r\n\r\n"), status::bad_request);
  request_parser p;
  EXPECT_EQ(feed_all(p, "GET / HTTP/1.0\r\n\r\n").state, parse_state::done);
}

// RFC 9112 §6.3 (5): invalid or repeated Content-Length -> 400.
TEST(RequestParser, RejectsInvalidOrDuplicateContentLength) {
  for (const char* cl : {"abc", "-1", "1 2", "+5", "5, 5", "99999999999999999999999"}) {
    EXPECT_EQ(
        error_of(std::string("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: ") + cl + "\r\n\r\n"),
        status::bad_request)
        << cl;
  }
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: "
                     "1\r\n\r\nx"),
            status::bad_request);
}

TEST(RequestParser, BodyAboveTheDiscardLimitIs413) {
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n"),
            status::content_too_large);
}

// RFC 9112 §6.1, §6.3 (3)-(4): Transfer-Encoding on requests.
TEST(RequestParser, TransferEncodingRules) {
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"),
            status::length_required);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            status::not_implemented);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            status::bad_request);
  EXPECT_EQ(error_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 3\r\n\r\n"),
            status::bad_request);
  EXPECT_EQ(error_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), status::bad_request);
}

// RFC 9110 §5.3: repeated list fields are joined; §13.1.3: repeated dates are invalid.
TEST(RequestParser, RepeatedFieldsJoinOrAreDropped) {
  request_parser p;
  ASSERT_EQ(feed_all(p,
                     "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding: gzip\r\n"
                     "If-None-Match: \"a\"\r\nAccept-Encoding: zstd;q=0.5\r\n"
                     "If-None-Match: \"b\"\r\nRange: bytes=0-1\r\nRange: bytes=2-3\r\n"
                     "If-Modified-Since: x\r\nIf-Modified-Since: y\r\n\r\n")
                .state,
            parse_state::done);
  EXPECT_EQ(p.get().accept_encoding, std::optional<std::string_view>("gzip, zstd;q=0.5"));
  EXPECT_EQ(p.get().if_none_match, "\"a\", \"b\"");
  EXPECT_TRUE(p.get().range.empty());
  EXPECT_TRUE(p.get().if_modified_since.empty());
}

TEST(RequestParser, EmptyAcceptEncodingDiffersFromAbsent) {
  request_parser p;
  ASSERT_EQ(feed_all(p, "GET / HTTP/1.1\r\nHost: h\r\nAccept-Encoding:\r\n\r\n").state,
            parse_state::done);
  EXPECT_EQ(p.get().accept_encoding, std::optional<std::string_view>(""));
  p.reset();
  ASSERT_EQ(feed_all(p, "GET / HTTP/1.1\r\nHost: h\r\n\r\n").state, parse_state::done);
  EXPECT_FALSE(p.get().accept_encoding.has_value());
}

// Limits: request line + fields <= 16 KiB (exactly at the limit is fine).
TEST(RequestParser, HeadOfExactlyTheLimitIsAccepted) {
  std::string s = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  s += std::string(16 * 1024 - s.size() - 4, 'a');
  s += "\r\n\r\n";
  ASSERT_EQ(s.size(), 16u * 1024);
  request_parser p;
  EXPECT_EQ(feed_all(p, s).state, parse_state::done);
  request_parser q;
  EXPECT_EQ(feed_bytewise(q, s).state, parse_state::done);
}

TEST(RequestParser, HeadOneByteOverTheLimitIs431) {
  std::string s = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  s += std::string(16 * 1024 - s.size() - 3, 'a');
  s += "\r\n\r\n";
  EXPECT_EQ(error_of(s), status::request_header_fields_too_large);
  request_parser q;
  EXPECT_EQ(feed_bytewise(q, s).state, parse_state::error);
  EXPECT_EQ(q.error_status(), status::request_header_fields_too_large);
}

TEST(RequestParser, TooLongTargetIs414) {
  const std::string s = "GET /" + std::string(17 * 1024, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n";
  EXPECT_EQ(error_of(s), status::uri_too_long);
  request_parser q;
  EXPECT_EQ(feed_bytewise(q, s).state, parse_state::error);
  EXPECT_EQ(q.error_status(), status::uri_too_long);
}

TEST(RequestParser, FieldCountLimitIs100) {
  std::string ok = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 99; ++i)
    ok += "X-" + std::to_string(i) + ": v\r\n";
  request_parser p;
  EXPECT_EQ(feed_all(p, ok + "\r\n").state, parse_state::done);
  EXPECT_EQ(p.get().fields.size(), 100u);
  EXPECT_EQ(error_of(ok + "X-last: v\r\n\r\n"), status::request_header_fields_too_large);
}

TEST(RequestParser, LimitsAreConfigurable) {
  parser_limits l;
  l.max_head_bytes = 64;
  l.max_fields = 2;
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", l),
            status::request_header_fields_too_large);
  EXPECT_EQ(error_of("GET / HTTP/1.1\r\nHost: h\r\nA: " + std::string(64, 'x') + "\r\n\r\n", l),
            status::request_header_fields_too_large);
}

// The server answers a refused HEAD without content: the method is known once the line parsed.
TEST(RequestParser, ErrorKeepsTheMethodOfAParsedRequestLine) {
  request_parser p;
  ASSERT_EQ(feed_all(p, "HEAD / HTTP/1.1\r\nBad Name: x\r\n").state, parse_state::error);
  EXPECT_EQ(p.error_method(), method::head);
  p.reset();
  ASSERT_EQ(feed_all(p, "HEAD / HTTP/2.0\r\n").state, parse_state::error);
  EXPECT_EQ(p.error_status(), status::http_version_not_supported);
  EXPECT_EQ(p.error_method(), method::head);  // the version was refused, not the method
  p.reset();
  ASSERT_EQ(feed_all(p, "HEAD\t/ HTTP/1.1\r\n").state, parse_state::error);
  EXPECT_EQ(p.error_method(), method::other);  // refused before the method was known
}

TEST(RequestParser, ErrorStopsConsuming) {
  request_parser p;
  ASSERT_EQ(feed_all(p, "GET / HTTP/1.1\r\nBad Name: x\r\n").state, parse_state::error);
  const auto r = feed_all(p, "GET / HTTP/1.1\r\n");
  EXPECT_EQ(r.state, parse_state::error);
  EXPECT_EQ(r.consumed, 0u);
}

}  // namespace
}  // namespace pagewire::http

namespace pagewire::http {
namespace {

// Found by the fuzzer: the 414-vs-400 decision must not depend on how input is split.
TEST(RequestParser, OverlongRequestLineStatusIsSplitIndependent) {
  const std::string s = std::string(16 * 1024, 'A') + " / HTTP/1.1\r\n\r\n";
  request_parser whole;
  ASSERT_EQ(feed_all(whole, s).state, parse_state::error);
  request_parser chunked;
  parse_result r{};
  for (std::size_t i = 0; i < s.size() && r.state == parse_state::need_more; i += 4096) {
    r = chunked.feed(
        std::span<const char>(s.data() + i, std::min<std::size_t>(4096, s.size() - i)));
  }
  ASSERT_EQ(r.state, parse_state::error);
  EXPECT_EQ(whole.error_status(), status::bad_request);
  EXPECT_EQ(chunked.error_status(), status::bad_request);
}

}  // namespace
}  // namespace pagewire::http
