#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/response_head.h>
#include <pagewire/apps/http/response_plan.h>

namespace pagewire::http {
namespace {

constexpr std::int64_t kMtimeSec = 1'700'000'000;
constexpr content_coding kBoth[] = {content_coding::zstd, content_coding::gzip};

class ResponsePlan : public ::testing::Test {
 protected:
  ResponsePlan() {
    req.method = method::get;
    req.method_name = "GET";
    req.keep_alive = true;
    res.path = "docs/index.html";
    res.stat = {true, true, 10000, kMtimeSec * 1'000'000'000 + 5, 77};
    opts.now = kMtimeSec + 1000;
  }

  std::string head(const response& r) {
    char buf[1024];
    const auto n = build_head(r, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, buf);
    EXPECT_TRUE(n);
    return n ? std::string(buf, *n) : std::string();
  }

  std::string etag_for(content_coding c) const {
    return std::string(etag::make(77, 10000, res.stat.mtime_ns, c).view());
  }

  request req;
  resource res;
  plan_options opts;
};

// RFC 9110 §9.3.1: GET of a file -> 200 with the whole file as a file range.
TEST_F(ResponsePlan, GetWholeFile) {
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(r.body, body_kind::file);
  EXPECT_EQ(r.offset, 0u);
  EXPECT_EQ(r.length, 10000u);
  EXPECT_EQ(r.content_length, 10000u);
  EXPECT_FALSE(r.from_sibling);
  EXPECT_EQ(head(r),
            "HTTP/1.1 200 OK\r\n"
            "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Server: pagewire\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            "Content-Length: 10000\r\n"
            "Last-Modified: Tue, 14 Nov 2023 22:13:20 GMT\r\n"
            "ETag: " +
                etag_for(content_coding::identity) +
                "\r\n"
                "Accept-Ranges: bytes\r\n"
                "\r\n");
}

// §9.3.2: HEAD has GET's fields, no body.
TEST_F(ResponsePlan, HeadHasGetsFields) {
  req.method = method::head;
  const auto r = plan_response(req, res, opts);
  EXPECT_TRUE(r.head_only);
  EXPECT_EQ(r.content_length, 10000u);
  EXPECT_NE(head(r).find("Content-Length: 10000\r\n"), std::string::npos);
}

// §15.6.2: a method the server does not recognize -> 501, without Allow.
TEST_F(ResponsePlan, UnknownMethodsGet501) {
  req.method = method::unknown;
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::not_implemented);
  EXPECT_EQ(head(r).find("Allow"), std::string::npos);
  EXPECT_EQ(r.content_length, r.fixed_body.size());
}

// §15.5.6: other methods -> 405 with Allow.
TEST_F(ResponsePlan, OtherMethodsGet405WithAllow) {
  req.method = method::other;
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::method_not_allowed);
  EXPECT_NE(head(r).find("Allow: GET, HEAD\r\n"), std::string::npos);
  EXPECT_EQ(r.body, body_kind::fixed);
  EXPECT_EQ(r.content_length, r.fixed_body.size());
}

TEST_F(ResponsePlan, MissingOrNonRegularIs404) {
  res.stat.exists = false;
  EXPECT_EQ(plan_response(req, res, opts).status, status::not_found);
  res.stat.exists = true;
  res.stat.is_regular = false;
  EXPECT_EQ(plan_response(req, res, opts).status, status::not_found);
}

// §13.2.2: If-None-Match -> 304 with ETag, no Content-Length, no body.
TEST_F(ResponsePlan, IfNoneMatchGives304WithEtag) {
  const std::string tag = etag_for(content_coding::identity);
  req.if_none_match = tag;
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::not_modified);
  EXPECT_EQ(r.body, body_kind::none);
  const auto h = head(r);
  EXPECT_NE(h.find("ETag: " + tag), std::string::npos);
  EXPECT_EQ(h.find("Content-Length"), std::string::npos);
}

TEST_F(ResponsePlan, IfModifiedSinceGives304) {
  req.if_modified_since = "Tue, 14 Nov 2023 22:13:20 GMT";
  EXPECT_EQ(plan_response(req, res, opts).status, status::not_modified);
  req.if_modified_since = "Tue, 14 Nov 2023 22:13:19 GMT";
  EXPECT_EQ(plan_response(req, res, opts).status, status::ok);
}

// RFC 9110 §8.8.2.1: a file stamped after the response's origination is sent as modified
// then, and a later date in If-Modified-Since cannot hide a change made before it.
TEST_F(ResponsePlan, FutureMtimeIsCappedAtNow) {
  res.stat.mtime_ns = (opts.now + 86400) * 1'000'000'000;
  const auto r = plan_response(req, res, opts);
  ASSERT_TRUE(r.last_modified);
  EXPECT_EQ(*r.last_modified, opts.now);
  req.if_modified_since = "Tue, 14 Nov 2023 22:13:20 GMT";  // kMtimeSec: before now
  EXPECT_EQ(plan_response(req, res, opts).status, status::ok);
}

TEST_F(ResponsePlan, IfMatchFailureGives412) {
  req.if_match = "\"nope\"";
  EXPECT_EQ(plan_response(req, res, opts).status, status::precondition_failed);
}

// §14.2, §15.3.7: one range -> 206 with Content-Range.
TEST_F(ResponsePlan, SingleRangeGives206) {
  req.range = "bytes=100-199";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::partial_content);
  EXPECT_EQ(r.offset, 100u);
  EXPECT_EQ(r.length, 100u);
  EXPECT_EQ(r.content_length, 100u);
  EXPECT_NE(head(r).find("Content-Range: bytes 100-199/10000\r\n"), std::string::npos);
}

// §14.6: several ranges -> multipart/byteranges with an exact Content-Length.
TEST_F(ResponsePlan, MultipleRangesGiveMultipart) {
  req.range = "bytes=0-9,100-109";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::partial_content);
  ASSERT_EQ(r.body, body_kind::multipart);
  ASSERT_EQ(r.multipart->parts().size(), 2u);
  std::uint64_t total = r.multipart->closing().size();
  for (const auto& p : r.multipart->parts())
    total += p.head.size() + p.file_length;
  EXPECT_EQ(r.content_length, total);
  const auto h = head(r);
  EXPECT_NE(h.find("Content-Type: multipart/byteranges; boundary="), std::string::npos);
  EXPECT_EQ(h.find("Content-Range"), std::string::npos);
}

// §15.5.17: 416 with "bytes */LEN".
TEST_F(ResponsePlan, UnsatisfiableRangeGives416) {
  req.range = "bytes=20000-";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::range_not_satisfiable);
  EXPECT_NE(head(r).find("Content-Range: bytes */10000\r\n"), std::string::npos);
}

TEST_F(ResponsePlan, MalformedRangeGives200) {
  req.range = "bytes=9-1";
  EXPECT_EQ(plan_response(req, res, opts).status, status::ok);
}

TEST_F(ResponsePlan, RangeIgnoredOnHead) {
  req.method = method::head;
  req.range = "bytes=0-1";
  EXPECT_EQ(plan_response(req, res, opts).status, status::ok);
}

// §13.1.5: a stale If-Range -> the whole representation.
TEST_F(ResponsePlan, IfRangeMismatchServesWhole) {
  req.range = "bytes=0-1";
  req.if_range = "\"old\"";
  EXPECT_EQ(plan_response(req, res, opts).status, status::ok);
  const std::string current = etag_for(content_coding::identity);
  req.if_range = current;
  EXPECT_EQ(plan_response(req, res, opts).status, status::partial_content);
}

// §12.5.3: compression on the fly for a compressible type above 1 KiB, with Vary.
TEST_F(ResponsePlan, CompressesOnTheFlyWithVaryAndDistinctEtag) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip";
  auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(r.body, body_kind::compress);
  EXPECT_EQ(r.coding, content_coding::gzip);
  EXPECT_FALSE(r.accept_ranges);
  r.content_length = 1234;  // the server sets it after compressing
  const auto h = head(r);
  EXPECT_NE(h.find("Content-Encoding: gzip\r\n"), std::string::npos);
  EXPECT_NE(h.find("Vary: Accept-Encoding\r\n"), std::string::npos);
  EXPECT_NE(h.find("ETag: " + etag_for(content_coding::gzip)), std::string::npos);
  EXPECT_NE(h.find("Content-Length: 1234\r\n"), std::string::npos);
}

TEST_F(ResponsePlan, PrefersAFreshPrecompressedSibling) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip, zstd";
  const precompressed sib[] = {{content_coding::zstd, {true, true, 3000, 5, 99}}};
  res.siblings = sib;
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.body, body_kind::file);
  EXPECT_TRUE(r.from_sibling);
  EXPECT_EQ(r.coding, content_coding::zstd);
  EXPECT_EQ(r.content_length, 3000u);
  EXPECT_EQ(r.etag->view(), etag::make(99, 3000, 5, content_coding::zstd).view());
}

// "Prefer a precompressed sibling": with gzip and zstd equally welcome, the gzip sibling
// wins over compressing zstd on the fly, though the server lists zstd first; a weight the
// client gives still decides.
TEST_F(ResponsePlan, ASiblingWinsATieOverCompressingOnTheFly) {
  opts.compress = kBoth;
  const precompressed sib[] = {{content_coding::gzip, {true, true, 3000, 5, 99}}};
  res.siblings = sib;
  req.accept_encoding = "zstd, gzip";
  auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::gzip);
  EXPECT_TRUE(r.from_sibling);
  req.accept_encoding = "zstd, gzip;q=0.9";
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::zstd);
  EXPECT_EQ(r.body, body_kind::compress);
}

TEST_F(ResponsePlan, SmallOrIncompressibleFilesStayIdentity) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip";
  res.stat.size = 1024;  // "above 1 KiB": 1 KiB itself stays identity
  EXPECT_EQ(plan_response(req, res, opts).coding, content_coding::identity);
  res.stat.size = 1025;
  EXPECT_EQ(plan_response(req, res, opts).coding, content_coding::gzip);
  res.stat.size = 10000;
  res.path = "a.png";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::identity);
  EXPECT_FALSE(r.vary_accept_encoding);
}

TEST_F(ResponsePlan, CompressionOffSendsNoVary) {
  req.accept_encoding = "gzip";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::identity);
  EXPECT_FALSE(r.vary_accept_encoding);
}

// RFC 9110 §12.5.5: every response whose content could depend on Accept-Encoding says so,
// the 412 and 416 of a negotiated resource included (a cache must not reuse them across
// codings).
TEST_F(ResponsePlan, FailedPreconditionsAndRangesOfANegotiatedResourceVary) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip";
  req.if_match = "\"other\"";
  auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::precondition_failed);
  EXPECT_NE(head(r).find("Vary: Accept-Encoding\r\n"), std::string::npos);
  req.if_match = {};
  req.range = "bytes=20000-";
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::range_not_satisfiable);
  EXPECT_NE(head(r).find("Vary: Accept-Encoding\r\n"), std::string::npos);
  opts.compress = {};  // nothing negotiated: no Vary
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::range_not_satisfiable);
  EXPECT_EQ(head(r).find("Vary"), std::string::npos);
}

TEST_F(ResponsePlan, NothingAcceptableGives406) {
  opts.compress = kBoth;
  req.accept_encoding = "identity;q=0, br";
  EXPECT_EQ(plan_response(req, res, opts).status, status::not_acceptable);
}

// Range applies to identity only: a range request picks identity when acceptable.
TEST_F(ResponsePlan, RangeRequestPrefersIdentity) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip";
  req.range = "bytes=0-1";
  const auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::identity);
  EXPECT_EQ(r.status, status::partial_content);
}

// §14.2: a Range the server will not honour changes nothing, so the client still gets the
// coding it prefers: HEAD (range handling is defined for GET only), a malformed range set,
// an If-Range that does not hold for identity.
TEST_F(ResponsePlan, RangeThatWillNotBeHonouredKeepsTheNegotiatedCoding) {
  opts.compress = kBoth;
  req.accept_encoding = "gzip";
  req.range = "bytes=0-1";
  req.method = method::head;
  auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(r.coding, content_coding::gzip);
  req.method = method::get;
  for (const std::string_view bad : {"bytes=abc", "items=0-1", "bytes=5-2"}) {
    req.range = bad;
    r = plan_response(req, res, opts);
    EXPECT_EQ(r.status, status::ok) << bad;
    EXPECT_EQ(r.coding, content_coding::gzip) << bad;
  }
  req.range = "bytes=0-1";
  const std::string gzip_tag = etag_for(content_coding::gzip);
  req.if_range = gzip_tag;  // a gzip validator: not identity's, so the whole, as gzip
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(r.coding, content_coding::gzip);
  const std::string identity_tag = etag_for(content_coding::identity);
  req.if_range = identity_tag;
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::partial_content);
  EXPECT_EQ(r.coding, content_coding::identity);
}

// A failed on-the-fly compression is answered without it: identity (or a sibling) when
// acceptable, still with Vary; 503 to a client that accepts only what failed.
TEST_F(ResponsePlan, OnTheFlyUnavailableFallsBackToWhatCanBeSent) {
  opts.compress = kBoth;
  opts.on_the_fly_unavailable = true;
  req.accept_encoding = "gzip";
  auto r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_EQ(r.body, body_kind::file);
  EXPECT_EQ(r.coding, content_coding::identity);
  EXPECT_TRUE(r.vary_accept_encoding);
  EXPECT_EQ(r.etag->view(), etag_for(content_coding::identity));

  const precompressed sib[] = {{content_coding::gzip, {true, true, 3000, 5, 99}}};
  res.siblings = sib;
  req.accept_encoding = "zstd, gzip;q=0.5";
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.coding, content_coding::gzip);  // the sibling needs no compressing
  EXPECT_TRUE(r.from_sibling);

  res.siblings = {};
  req.accept_encoding = "gzip, identity;q=0";
  r = plan_response(req, res, opts);
  EXPECT_EQ(r.status, status::service_unavailable);
  EXPECT_TRUE(r.vary_accept_encoding);
  EXPECT_TRUE(r.keep_alive);
  req.accept_encoding = "br, identity;q=0";  // never acceptable: still 406
  EXPECT_EQ(plan_response(req, res, opts).status, status::not_acceptable);
}

// RFC 9112 §9.3-§9.6: Connection fields.
TEST_F(ResponsePlan, ConnectionFields) {
  req.keep_alive = false;
  EXPECT_NE(head(plan_response(req, res, opts)).find("Connection: close\r\n"), std::string::npos);
  req.keep_alive = true;
  req.version = http_version::http10;
  EXPECT_NE(head(plan_response(req, res, opts)).find("Connection: keep-alive\r\n"),
            std::string::npos);
  req.version = http_version::http11;
  EXPECT_EQ(head(plan_response(req, res, opts)).find("Connection:"), std::string::npos);
}

TEST(PlanError, FixedBodyAndClose) {
  const auto r =
      plan_error(status::request_header_fields_too_large, http_version::http11, false, false);
  EXPECT_EQ(r.body, body_kind::fixed);
  EXPECT_EQ(r.fixed_body, "431 Request Header Fields Too Large\n");
  EXPECT_EQ(r.content_length, r.fixed_body.size());
  EXPECT_FALSE(r.keep_alive);
}

TEST_F(ResponsePlan, RedirectIsMovedPermanentlyWithLocationAndKeepAlive) {
  const auto r = plan_redirect("/docs/?x=1", http_version::http11, false, true);
  EXPECT_EQ(r.status, status::moved_permanently);
  EXPECT_EQ(r.location, "/docs/?x=1");
  EXPECT_EQ(r.fixed_body, "301 Moved Permanently\n");
  EXPECT_TRUE(r.keep_alive);
  const std::string h = head(r);
  EXPECT_EQ(h.rfind("HTTP/1.1 301 Moved Permanently\r\n", 0), 0u);
  EXPECT_NE(h.find("\r\nLocation: /docs/?x=1\r\n"), std::string::npos);
  EXPECT_NE(h.find("\r\nContent-Length: 22\r\n"), std::string::npos);
  EXPECT_EQ(h.find("Connection:"), std::string::npos);
}

TEST(ResponseHead, ReportsWhenTheBufferIsTooSmall) {
  const auto r = plan_error(status::not_found, http_version::http11, false, true);
  char buf[300];
  const auto n = build_head(r, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, buf);
  ASSERT_TRUE(n);
  EXPECT_FALSE(
      build_head(r, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, std::span<char>(buf, *n - 1)));
  EXPECT_TRUE(
      build_head(r, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, std::span<char>(buf, *n)));
}

}  // namespace
}  // namespace pagewire::http

namespace pagewire::http {
namespace {

// build_head caches Last-Modified strings per thread: times sharing a cache slot (t and
// t + 8) and a repeat of the first must each come out as their own date.
TEST(BuildHead, LastModifiedStaysRightAcrossCachedSeconds) {
  auto lm = [](std::int64_t t) {
    response r;
    r.keep_alive = true;
    r.last_modified = t;
    char buf[512];
    const auto n = build_head(r, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, buf);
    const std::string h = n ? std::string(buf, *n) : std::string();
    const auto at = h.find("Last-Modified: ");
    return at == std::string::npos ? std::string() : h.substr(at + 15, 29);
  };
  EXPECT_EQ(lm(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(lm(784111777 + 8), "Sun, 06 Nov 1994 08:49:45 GMT");
  EXPECT_EQ(lm(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(lm(0), "Thu, 01 Jan 1970 00:00:00 GMT");
}

}  // namespace
}  // namespace pagewire::http
