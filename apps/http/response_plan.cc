#include <algorithm>
#include <array>

#include <pagewire/apps/http/accept_encoding.h>
#include <pagewire/apps/http/mime.h>
#include <pagewire/apps/http/preconditions.h>
#include <pagewire/apps/http/response_plan.h>

namespace pagewire::http {

std::string_view error_body(status s) {
  switch (s) {
#define PW_BODY(st, text) \
  case status::st:        \
    return text;
    PW_BODY(moved_permanently, "301 Moved Permanently\n")
    PW_BODY(bad_request, "400 Bad Request\n")
    PW_BODY(forbidden, "403 Forbidden\n")
    PW_BODY(not_found, "404 Not Found\n")
    PW_BODY(method_not_allowed, "405 Method Not Allowed\n")
    PW_BODY(not_acceptable, "406 Not Acceptable\n")
    PW_BODY(length_required, "411 Length Required\n")
    PW_BODY(precondition_failed, "412 Precondition Failed\n")
    PW_BODY(content_too_large, "413 Content Too Large\n")
    PW_BODY(uri_too_long, "414 URI Too Long\n")
    PW_BODY(range_not_satisfiable, "416 Range Not Satisfiable\n")
    PW_BODY(request_header_fields_too_large, "431 Request Header Fields Too Large\n")
    PW_BODY(internal_server_error, "500 Internal Server Error\n")
    PW_BODY(not_implemented, "501 Not Implemented\n")
    PW_BODY(service_unavailable, "503 Service Unavailable\n")
    PW_BODY(http_version_not_supported, "505 HTTP Version Not Supported\n")
#undef PW_BODY
    default:
      break;
  }
  return "";
}

status method_refusal(method m) {
  return m == method::unknown ? status::not_implemented : status::method_not_allowed;
}

response plan_error(status s, http_version version, bool head_only, bool keep_alive) {
  response r;
  r.status = s;
  r.version = version;
  r.keep_alive = keep_alive;
  r.head_only = head_only;
  r.fixed_body = error_body(s);
  r.body = r.fixed_body.empty() ? body_kind::none : body_kind::fixed;
  r.content_length = r.fixed_body.size();
  if (!r.fixed_body.empty()) r.content_type = "text/plain; charset=utf-8";
  r.allow = s == status::method_not_allowed;
  return r;
}

response plan_redirect(std::string_view location, http_version version, bool head_only,
                       bool keep_alive) {
  response r = plan_error(status::moved_permanently, version, head_only, keep_alive);
  r.location = location;
  return r;
}

namespace {

struct variant {
  content_coding coding;
  const precompressed* sibling;  // null: compress on the fly
};

// The codings `res` can be sent in (identity excluded), in the order a tie in the client's
// weights is broken: the precompressed siblings, then the codings compressed on the fly,
// each in the server's preference order. A sibling costs nothing to send.
std::size_t available_variants(const resource& res, const plan_options& opts, bool compressible,
                               std::array<variant, 4>& out) {
  const bool on_the_fly = compressible && res.stat.size > opts.min_compress_size &&
                          res.stat.size <= opts.max_compress_size;
  std::size_t n = 0;
  for (const bool siblings : {true, false}) {
    for (const content_coding c : opts.compress) {
      if (c == content_coding::identity || n == out.size()) continue;
      const precompressed* sib = nullptr;
      for (const auto& s : res.siblings)
        if (s.coding == c && s.stat.exists && s.stat.is_regular) sib = &s;
      if (siblings ? sib != nullptr : !sib && on_the_fly) out[n++] = variant{c, sib};
    }
  }
  return n;
}

std::int64_t mtime_seconds(const file_stat& st) {
  return st.mtime_ns >= 0 ? st.mtime_ns / 1'000'000'000 : (st.mtime_ns + 1) / 1'000'000'000 - 1;
}

// RFC 9110 §14.2: a Range field the server will honour on identity: GET, a bytes range
// set that is not ignored, an If-Range that holds for identity's validators (§13.1.5).
bool range_applies(const request& req, const resource& res, const plan_options& opts,
                   std::int64_t last_modified) {
  if (req.method != method::get || req.range.empty()) return false;
  if (evaluate_range(req.range, res.stat.size).outcome == range_outcome::ignore) return false;
  if (req.if_range.empty()) return true;
  const etag tag =
      etag::make(res.stat.inode, res.stat.size, res.stat.mtime_ns, content_coding::identity);
  return if_range_allows(req.if_range, validators{tag.view(), last_modified}, opts.now);
}

void plan_ranges(response& r, const request& req, const range_set& rs, std::uint64_t size,
                 std::string_view type, const plan_options& opts) {
  if (rs.outcome == range_outcome::unsatisfiable) {
    const bool keep = r.keep_alive;
    const auto etag = r.etag;
    const auto lm = r.last_modified;
    const bool vary = r.vary_accept_encoding;
    r = plan_error(status::range_not_satisfiable, req.version, r.head_only, keep);
    r.range = content_range{true, 0, 0, size};
    r.etag = etag;
    r.last_modified = lm;
    r.vary_accept_encoding = vary;
    r.accept_ranges = true;
    return;
  }
  r.status = status::partial_content;
  const auto ranges = rs.ranges();
  if (ranges.size() == 1) {
    r.offset = ranges[0].first;
    r.length = r.content_length = ranges[0].length;
    r.range = content_range{false, ranges[0].first, ranges[0].last(), size};
    return;
  }
  r.multipart.emplace(ranges, size, type, make_boundary(opts.boundary_seed));
  r.body = body_kind::multipart;
  r.content_type = r.multipart->content_type();
  r.content_length = r.multipart->content_length();
}

}  // namespace

response plan_response(const request& req, const resource& res, const plan_options& opts) {
  const bool head_only = req.method == method::head;
  if (req.method == method::other || req.method == method::unknown) {
    return plan_error(method_refusal(req.method), req.version, false, req.keep_alive);
  }
  if (!res.stat.exists || !res.stat.is_regular) {
    return plan_error(status::not_found, req.version, head_only, req.keep_alive);
  }
  const mime_type mime = mime_for_path(res.path);
  std::array<variant, 4> variants{};
  const std::size_t nvariants = available_variants(res, opts, mime.compressible, variants);
  std::array<content_coding, 4> codings{}, sendable{};  // sendable: those it can produce now
  std::size_t nsendable = 0;
  for (std::size_t i = 0; i < nvariants; ++i) {
    codings[i] = variants[i].coding;
    if (variants[i].sibling || !opts.on_the_fly_unavailable) sendable[nsendable++] = codings[i];
  }
  // RFC 9110 §8.8.2.1: a modification time later than the message's origination (a file
  // stamped in the future) is replaced by it, so it cannot pass a later change off as older.
  const std::int64_t last_modified = std::min(mtime_seconds(res.stat), opts.now);

  auto chosen = negotiate_encoding(req.accept_encoding, std::span(sendable.data(), nsendable));
  if (chosen && *chosen != content_coding::identity &&
      negotiate_encoding(req.accept_encoding, {}) == content_coding::identity &&
      range_applies(req, res, opts, last_modified)) {
    chosen = content_coding::identity;  // a range request: honour it on identity
  }
  if (!chosen) {
    // Acceptable only as a coding the server cannot produce at the moment: try later.
    const bool later =
        nsendable < nvariants &&
        negotiate_encoding(req.accept_encoding, std::span(codings.data(), nvariants)).has_value();
    response r = plan_error(later ? status::service_unavailable : status::not_acceptable,
                            req.version, head_only, req.keep_alive);
    r.vary_accept_encoding = nvariants > 0;
    return r;
  }
  const variant* v = nullptr;
  for (std::size_t i = 0; i < nvariants; ++i)
    if (variants[i].coding == *chosen) v = &variants[i];

  response r;
  r.version = req.version;
  r.keep_alive = req.keep_alive;
  r.head_only = head_only;
  r.content_type = mime.content_type;
  r.vary_accept_encoding = nvariants > 0;
  r.coding = *chosen;
  const file_stat& tag_source = v && v->sibling ? v->sibling->stat : res.stat;
  r.etag = etag::make(tag_source.inode, tag_source.size, tag_source.mtime_ns, *chosen);
  r.last_modified = last_modified;
  const validators val{r.etag->view(), *r.last_modified};

  switch (evaluate_preconditions(req, val, opts.now)) {
    case precondition::failed: {
      response e = plan_error(status::precondition_failed, req.version, head_only, r.keep_alive);
      e.etag = r.etag;
      e.vary_accept_encoding = r.vary_accept_encoding;
      return e;
    }
    case precondition::not_modified:
      r.status = status::not_modified;
      r.content_type = {};
      return r;
    case precondition::proceed:
      break;
  }

  if (v && !v->sibling) {  // on-the-fly compression: length known after compressing
    r.body = body_kind::compress;
    return r;
  }
  r.body = body_kind::file;
  r.from_sibling = v != nullptr;
  r.length = r.content_length = v ? v->sibling->stat.size : res.stat.size;
  if (*chosen != content_coding::identity) return r;

  r.accept_ranges = true;
  // RFC 9110 §14.2: Range is defined for GET only; §13.1.5: If-Range gates it.
  if (req.method == method::get && !req.range.empty() &&
      if_range_allows(req.if_range, val, opts.now)) {
    const range_set rs = evaluate_range(req.range, res.stat.size);
    if (rs.outcome != range_outcome::ignore)
      plan_ranges(r, req, rs, res.stat.size, mime.content_type, opts);
  }
  return r;
}

}  // namespace pagewire::http
