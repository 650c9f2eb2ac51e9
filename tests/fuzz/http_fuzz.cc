// libFuzzer target for the HTTP protocol core: the request parser (whole input vs the
// same bytes split at a data-chosen point and byte-by-byte must agree), and the
// path decoder, range and Accept-Encoding evaluators on what the parser produced.
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh http` with clang++-14; its seeds (corpus/http/)
// run in every `make test` as //tests/fuzz:http_corpus_test.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <pagewire/apps/http/accept_encoding.h>
#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/http/range.h>
#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/http/response_head.h>
#include <pagewire/apps/http/response_plan.h>
#include <pagewire/apps/http/target.h>

#include "fuzz_check.h"

namespace http = pagewire::http;

namespace {

struct outcome {
  http::parse_state state;
  std::size_t consumed;
  http::status error;
  std::string line;
};

outcome run(std::string_view s, std::size_t chunk) {
  http::parser_limits limits;
  limits.max_head_bytes = 1024;  // small so the fuzzer reaches the limits
  limits.max_fields = 8;
  limits.max_body_bytes = 64;
  static http::request_parser* parsers[2] = {new http::request_parser(limits),
                                             new http::request_parser(limits)};
  http::request_parser& p = *parsers[chunk == 1 ? 1 : 0];
  p.reset();
  std::size_t used = 0;
  http::parse_result r{http::parse_state::need_more, 0};
  while (used < s.size()) {
    const std::size_t n = std::min(chunk, s.size() - used);
    r = p.feed({s.data() + used, n});
    check(r.consumed <= n);
    used += r.consumed;
    if (r.state != http::parse_state::need_more) break;
    check(r.consumed == n);
  }
  outcome o{r.state, used, p.error_status(), {}};
  if (r.state == http::parse_state::done) o.line = std::string(p.get().request_line);
  return o;
}

void check_path(std::string_view target) {
  std::vector<char> scratch(target.size());
  const auto r = http::resolve_target(target, scratch);
  if (!r) return;
  const std::string_view p = r->path;
  check(p.empty() || (p.front() != '/' && p.back() != '/'));
  check(p.find('\0') == std::string_view::npos);
  check(p.find('\\') == std::string_view::npos);
  check(p.find("//") == std::string_view::npos);
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    const auto seg = p.substr(i, j - i);
    check(seg != ".." && seg != ".");
    i = j + 1;
  }
  // A directory's 301 Location: plain URI bytes only, naming the same path with its slash.
  std::string location;
  check(http::directory_location(target, p, location));
  check(!location.empty() && location.front() == '/' && !location.starts_with("//"));
  for (const char c : location)
    check(c > 0x20 && c < 0x7f &&
          std::string_view("\"<>\\^`{|}#").find(c) == std::string_view::npos);
  std::vector<char> again(location.size());
  const auto back = http::resolve_target(location, again);
  check(back && back->path == p && back->trailing_slash);
  // The path as a directory listing writes a name into an href (percent-encoded, '/' kept):
  // unreserved bytes and escapes only, and it resolves back to the same path.
  std::string href = "/";
  http::append_percent_encoded(href, p, http::uri_bytes::name);
  for (const char c : href)
    check((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          std::string_view("-._~/%").find(c) != std::string_view::npos);
  std::vector<char> named_scratch(href.size());
  const auto named = http::resolve_target(href, named_scratch);
  check(named && named->path == p);
}

void check_request(const http::request& req) {
  check_path(req.target);
  const auto rs = http::evaluate_range(req.range, 1000);
  std::uint64_t prev_end = 0;
  for (const auto& r : rs.ranges()) {
    check(r.length > 0 && r.first + r.length <= 1000 && r.first >= prev_end);
    prev_end = r.first + r.length;
  }
  const http::content_coding offered[] = {http::content_coding::zstd, http::content_coding::gzip};
  (void)http::negotiate_encoding(req.accept_encoding, offered);
  (void)http::parse_http_date(req.if_modified_since, 1'800'000'000);

  http::resource res;
  res.path = "a/index.html";
  res.stat = {true, true, 5000, 1'700'000'000'000'000'000, 42};
  http::plan_options opts;
  opts.compress = offered;
  opts.now = 1'800'000'000;
  const http::response resp = http::plan_response(req, res, opts);
  char head[1024];
  const auto n = http::build_head(resp, {"Sun, 06 Nov 1994 08:49:37 GMT", "pagewire"}, head);
  check(n.has_value());
  if (resp.body == http::body_kind::multipart) {
    std::uint64_t total = resp.multipart->closing().size();
    for (const auto& part : resp.multipart->parts())
      total += part.head.size() + part.file_length;
    check(total == resp.content_length);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut = data[0];  // first byte picks the chunk size
  const std::string_view s(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_path(s);
  const outcome whole = run(s, s.size() == 0 ? 1 : s.size());
  const outcome split = run(s, cut == 0 ? 1 : cut);
  const outcome bytewise = run(s, 1);
  for (const outcome* o : {&split, &bytewise}) {
    check(o->state == whole.state);
    // After an error the connection closes; how much was taken does not matter.
    if (whole.state == http::parse_state::error) {
      check(o->error == whole.error);
    } else {
      check(o->consumed == whole.consumed && o->line == whole.line);
    }
  }
  if (whole.state == http::parse_state::done) {
    http::parser_limits limits;
    http::request_parser p(limits);
    p.feed({s.data(), s.size()});
    check_request(p.get());
  }
  return 0;
}
