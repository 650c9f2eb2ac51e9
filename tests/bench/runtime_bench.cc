// Runtime overheads: a NOP round trip through pagewire against raw liburing in the
// same binary, completion stacks of 0/1/4 actions, a compound of 16 children.
// Build and run: bazel run --config=release //tests/bench:runtime_bench

#include <cstdio>
#include <cstdlib>
#include <vector>

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <pagewire/runtime/async.h>
#include <pagewire/runtime/completion_stack.h>
#include <pagewire/runtime/compound.h>
#include <pagewire/runtime/context.h>

namespace pagewire::runtime {
namespace {

struct nop_op final : operation {
  int results = 0;
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_nop(sqe); }
  void complete(int, unsigned) override { ++results; }
};

struct pass_action final : completion_action {
  action_result on_complete(operation&, int& result, bool) override {
    benchmark::DoNotOptimize(result);
    return action_result::done;
  }
};

context_options bench_options() {
  context_options o;
  o.backend = backend_kind::io_uring;
  o.read_environment = false;
  return o;
}

void BM_RawLiburingNop(benchmark::State& state) {
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL;
  if (io_uring_queue_init_params(256, &ring, &p) < 0) {
    state.SkipWithError("io_uring_queue_init_params");
    return;
  }
  for (auto _ : state) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, 1);
    io_uring_submit_and_wait(&ring, 1);
    io_uring_cqe* cqe;
    io_uring_peek_cqe(&ring, &cqe);
    benchmark::DoNotOptimize(cqe->res);
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
}
BENCHMARK(BM_RawLiburingNop);

void BM_PagewireNop(benchmark::State& state) {
  context ctx(bench_options());
  nop_op op;
  for (auto _ : state) {
    ctx.start(op);
    ctx.run_one();
  }
  if (op.results != static_cast<int>(state.iterations())) state.SkipWithError("lost completions");
}
BENCHMARK(BM_PagewireNop);

void BM_PagewireAsyncNopCallback(benchmark::State& state) {
  context ctx(bench_options());
  int n = 0;
  for (auto _ : state) {
    async_nop(ctx, [&](std::error_code, int) { ++n; });
    ctx.run_one();
  }
  benchmark::DoNotOptimize(n);
}
BENCHMARK(BM_PagewireAsyncNopCallback);

void BM_CompletionStack(benchmark::State& state) {
  context ctx(bench_options());
  nop_op op;
  pass_action actions[4];
  const int n = static_cast<int>(state.range(0));
  for (auto _ : state) {
    for (int i = 0; i < n; ++i)
      op.push_action(actions[i]);
    ctx.start(op);
    ctx.run_one();
  }
}
BENCHMARK(BM_CompletionStack)->Arg(0)->Arg(1)->Arg(4);

struct counting_compound final : compound {
  using compound::compound;
  int completions = 0;
  void on_complete(std::error_code, std::size_t) override { ++completions; }
};

void BM_Compound16(benchmark::State& state) {
  context ctx(bench_options());
  std::vector<nop_op> children(16);
  counting_compound c(ctx);
  for (auto _ : state) {
    c.reset();
    for (auto& ch : children)
      c.add(ch);
    c.start();
    ctx.run();
  }
  if (c.completions != static_cast<int>(state.iterations()))
    state.SkipWithError("lost compound completions");
  state.SetItemsProcessed(state.iterations() * 16);
}
BENCHMARK(BM_Compound16);

}  // namespace
}  // namespace pagewire::runtime

BENCHMARK_MAIN();
