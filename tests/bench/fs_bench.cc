// fs/ micro-benchmarks: slice share/split/drop, 3-segment response chain build, page_cache hit
// lookup, and page_cache sequential read against plain pread in the same run (ratio printed at
// the end). Build and run with --config=release:
//   bazel run --config=release //tests/bench:fs_bench
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include <benchmark/benchmark.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/runtime/context.h>

#include "tests/bench/bench_inputs.h"

namespace pagewire::fs {
namespace {

constexpr std::size_t kFileBytes = std::size_t{64} << 20;
constexpr std::size_t kChunk = std::size_t{1} << 20;

const std::string& bench_file() {
  static const std::string path = [] {
    std::vector<char> chunk(kChunk);
    for (std::size_t i = 0; i < chunk.size(); ++i)
      chunk[i] = static_cast<char>(i * 131 + 7);
    return bench::scratch_file("pagewire_fs_bench", kFileBytes, chunk);
  }();
  return path;
}

std::shared_ptr<const file> open_bench_file() {
  std::error_code ec;
  auto f = file::open(bench_file().c_str(), ec);
  if (!f) std::abort();
  return f;
}

void BM_SliceShareDrop(benchmark::State& state) {
  page_pool pool;
  slice s(pool.allocate(), 0, kPageSize);
  for (auto _ : state) {
    slice t = s.share(100, 1000);
    benchmark::DoNotOptimize(t.data());
  }
}
BENCHMARK(BM_SliceShareDrop);

void BM_SliceSplitDrop(benchmark::State& state) {
  page_pool pool;
  slice s(pool.allocate(), 0, kPageSize);
  for (auto _ : state) {
    slice whole = s;                 // share
    slice head = whole.split(1000);  // split: two non-overlapping children
    benchmark::DoNotOptimize(head.data());
    benchmark::DoNotOptimize(whole.data());
  }  // both dropped
}
BENCHMARK(BM_SliceSplitDrop);

void BM_ChainBuild3SegmentResponse(benchmark::State& state) {
  static const char kCrlf[] = "\r\n";
  page_pool pool;
  slice header(pool.allocate(), 0, 180);
  auto f = open_bench_file();
  for (auto _ : state) {
    chain c;
    c.append(header.share());
    c.append(file_range(f, 4096, 1 << 20));
    c.append(slice::from_static(kCrlf, 2));
    benchmark::DoNotOptimize(c.size());
  }
}
BENCHMARK(BM_ChainBuild3SegmentResponse);

void run_read(runtime::context& ctx, page_cache& cache, const std::shared_ptr<const file>& f,
              std::uint64_t off, std::uint64_t len) {
  bool done = false;
  cache.async_read(f, off, len, [&](std::error_code ec, chain c) {
    if (ec || c.size() != len) std::abort();
    benchmark::DoNotOptimize(c.size());
    done = true;
  });
  ctx.run();
  ctx.restart();
  if (!done) std::abort();
}

void BM_PageCacheHitLookup(benchmark::State& state) {
  runtime::context ctx;
  page_pool pool;
  page_cache cache(ctx, pool);
  auto f = open_bench_file();
  run_read(ctx, cache, f, 0, 1024 * kPageSize);
  std::uint64_t i = 0;
  for (auto _ : state) {
    slice s = cache.lookup(*f, i);
    benchmark::DoNotOptimize(s.data());
    i = (i + 1) & 1023;
  }
}
BENCHMARK(BM_PageCacheHitLookup);

void report(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kFileBytes));
}

void BM_SequentialPread(benchmark::State& state) {
  auto f = open_bench_file();
  std::vector<char> buf(kChunk);
  for (auto _ : state) {
    for (std::size_t off = 0; off < kFileBytes; off += kChunk) {
      if (::pread(f->fd(), buf.data(), kChunk, static_cast<off_t>(off)) !=
          static_cast<ssize_t>(kChunk)) {
        std::abort();
      }
    }
    benchmark::DoNotOptimize(buf.data());
  }
  report(state);
}
BENCHMARK(BM_SequentialPread)->UseRealTime()->Unit(benchmark::kMillisecond);

// pread into a rotating 16 MiB buffer: the same destination footprint as the 16 MiB cache budget
// below, so the copy lands outside L2 as the cache's does.
void BM_SequentialPread16MiBBuffer(benchmark::State& state) {
  auto f = open_bench_file();
  constexpr std::size_t kBuf = std::size_t{16} << 20;
  std::vector<char> buf(kBuf);
  for (auto _ : state) {
    for (std::size_t off = 0; off < kFileBytes; off += kChunk) {
      if (::pread(f->fd(), buf.data() + off % kBuf, kChunk, static_cast<off_t>(off)) !=
          static_cast<ssize_t>(kChunk)) {
        std::abort();
      }
    }
    benchmark::DoNotOptimize(buf.data());
  }
  report(state);
}
BENCHMARK(BM_SequentialPread16MiBBuffer)->UseRealTime()->Unit(benchmark::kMillisecond);

// Arg 0: budget 16 MiB, every pass re-reads from the kernel (misses + read-ahead).
// Arg 1: budget 96 MiB, the file stays cached (hits).
void BM_SequentialPageCache(benchmark::State& state) {
  page_pool_options po;
  po.initial_arenas = 48;
  po.max_bytes = std::size_t{128} << 20;
  page_pool pool(po);  // outlives the ring it registers with
  runtime::context ctx;
  std::error_code ec = std::make_error_code(std::errc::not_supported);
  if (ctx.native_ring() != nullptr) ec = pool.register_buffers(*ctx.native_ring());
  page_cache_options o;
  o.budget_pages = state.range(0) == 0 ? (16 << 20) / kPageSize : (96 << 20) / kPageSize;
  auto f = open_bench_file();
  {
    page_cache cache(ctx, pool, o);
    for (auto _ : state) {
      for (std::size_t off = 0; off < kFileBytes; off += kChunk)
        run_read(ctx, cache, f, off, kChunk);
    }
    page_cache_stats s = cache.stats();
    state.counters["fixed_reads"] = static_cast<double>(s.fixed_reads);
    state.counters["reads"] = static_cast<double>(s.reads_issued);
    state.counters["hit_ratio"] =
        static_cast<double>(s.hits) / static_cast<double>(s.hits + s.misses + s.coalesced);
    state.SetLabel(ec ? "unregistered" : "registered");
  }
  report(state);
}
BENCHMARK(BM_SequentialPageCache)->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace pagewire::fs

// Console output plus, at the end, each sequential page_cache run's throughput over pread's:
// the medians when the runs were repeated (--benchmark_repetitions), each run's own figure
// otherwise. Mean, stddev and cv rows are not throughputs and are left out.
class ratio_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      const bool median = r.run_type == Run::RT_Aggregate && r.aggregate_name == "median";
      if (r.run_type == Run::RT_Aggregate && !median) continue;
      auto it = r.counters.find("bytes_per_second");
      if (it == r.counters.end()) continue;
      (median ? medians_ : iterations_).emplace_back(r.run_name.str(), it->second.value);
    }
  }
  void print_ratios() const {
    const auto& rates = medians_.empty() ? iterations_ : medians_;
    double pread = 0;
    for (auto& [name, rate] : rates) {
      if (name == "BM_SequentialPread/real_time") pread = rate;
    }
    if (pread <= 0) return;
    std::printf("\nsequential read, GB/s (1 GB = 1e9 bytes)%s, ratio to pread in this run:\n",
                medians_.empty() ? "" : ", medians");
    for (auto& [name, rate] : rates) {
      std::printf("  %-44s %7.2f GB/s  x%.2f\n", name.c_str(), rate / 1e9, rate / pread);
    }
  }

 private:
  std::vector<std::pair<std::string, double>> iterations_;
  std::vector<std::pair<std::string, double>> medians_;
};

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ratio_reporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.print_ratios();
  benchmark::Shutdown();
  return 0;
}
