// Protocol-core costs of sendfile_server: parsing a typical browser GET and building a
// full response head. Build and run with:
//   bazel run --config=release //tests/bench:http_bench

#include <string_view>

#include <benchmark/benchmark.h>

#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/http/response_head.h>
#include <pagewire/apps/http/response_plan.h>
#include <pagewire/apps/http/target.h>

namespace http = pagewire::http;

namespace {

// 398 bytes, as Firefox sends for a page.
constexpr std::string_view kBrowserGet =
    "GET /docs/index.html HTTP/1.1\r\n"
    "Host: localhost:8080\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "\r\n";

void BM_ParseBrowserGet(benchmark::State& state) {
  http::request_parser p;
  for (auto _ : state) {
    p.reset();
    auto r = p.feed({kBrowserGet.data(), kBrowserGet.size()});
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(p.get().host.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBrowserGet.size()));
  state.counters["request_bytes"] = static_cast<double>(kBrowserGet.size());
}
BENCHMARK(BM_ParseBrowserGet);

void BM_ResolveTarget(benchmark::State& state) {
  char scratch[64];
  for (auto _ : state) {
    auto r = http::resolve_target("/docs/a%20b/index.html?v=3", scratch);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_ResolveTarget);

http::request parsed_request(http::request_parser& p) {
  p.feed({kBrowserGet.data(), kBrowserGet.size()});
  return p.get();
}

// plan_response + build_head for a 200 of a 10 KB file: what happens per request
// after parsing, minus the stat.
void BM_PlanAndBuildHead(benchmark::State& state) {
  http::request_parser p;
  const http::request req = parsed_request(p);
  http::resource res;
  res.path = "docs/index.html";
  res.stat = {true, true, 10240, 1'700'000'000'123'456'789, 1234567};
  http::plan_options opts;
  opts.now = 1'800'000'000;
  char buf[1024];
  for (auto _ : state) {
    const http::response r = http::plan_response(req, res, opts);
    auto n = http::build_head(r, {http::current_http_date(), "pagewire"}, buf);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(buf);
  }
}
BENCHMARK(BM_PlanAndBuildHead);

// build_head alone for the same response.
void BM_BuildHead(benchmark::State& state) {
  http::request_parser p;
  const http::request req = parsed_request(p);
  http::resource res;
  res.path = "docs/index.html";
  res.stat = {true, true, 10240, 1'700'000'000'123'456'789, 1234567};
  const http::response r = http::plan_response(req, res, {});
  char buf[1024];
  for (auto _ : state) {
    auto n = http::build_head(r, {http::current_http_date(), "pagewire"}, buf);
    benchmark::DoNotOptimize(n);
    benchmark::DoNotOptimize(buf);
  }
}
BENCHMARK(BM_BuildHead);

}  // namespace
