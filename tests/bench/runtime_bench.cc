// Runtime overheads: a NOP round trip through pagewire against raw liburing in the
// same binary, completion stacks of 0/1/4 actions, a compound of 16 children, and what
// closing one connection and cancelling one timer cost the epoll fallback with N others
// pending.
// Build and run: bazel run --config=release //tests/bench:runtime_bench

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <benchmark/benchmark.h>
#include <liburing.h>

#include <pagewire/runtime/async.h>
#include <pagewire/runtime/completion_stack.h>
#include <pagewire/runtime/compound.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/timer.h>

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

context_options bench_options(backend_kind backend = backend_kind::io_uring) {
  context_options o;
  o.backend = backend;
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

struct recv_op final : operation {
  int fd = -1;
  int result = 0;
  bool done = false;
  char buf[64];
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_recv(sqe, fd, buf, sizeof buf, 0); }
  void complete(int r, unsigned) override {
    result = r;
    done = true;
  }
};

// A server closing one connection (cancel_fd of its pending receive) while arg(0) others wait
// for their next request, on the epoll fallback. Flat in arg(0) when cancellation looks the
// job up; it grew with every idle connection when it scanned them all.
void BM_FallbackCloseAmongIdle(benchmark::State& state) {
  const auto idle = static_cast<std::size_t>(state.range(0));
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < 3 * idle + 64) {  // a socketpair each, and the fallback's dup per wait
    state.SkipWithError("RLIMIT_NOFILE too low");
    return;
  }
  std::vector<int> fds;
  std::vector<recv_op> waiting(idle);  // outlive the context, which drains them when destroyed
  recv_op closing;
  context ctx(bench_options(backend_kind::fallback));
  for (auto& r : waiting) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
      state.SkipWithError("socketpair");
      break;
    }
    fds.insert(fds.end(), {sv[0], sv[1]});
    r.fd = sv[0];
    ctx.start(r);
  }
  ctx.poll();
  int sv[2];
  if (state.error_occurred() || ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    for (int fd : fds)
      ::close(fd);
    if (!state.error_occurred()) state.SkipWithError("socketpair");
    return;
  }
  closing.fd = sv[0];
  for (auto _ : state) {
    closing.done = false;
    ctx.start(closing);
    ctx.poll();
    ctx.cancel_fd(closing.fd);
    while (!closing.done && ctx.run_one() > 0) {
    }
  }
  if (closing.result != -ECANCELED) state.SkipWithError("the receive was not cancelled");
  for (auto& r : waiting)
    ctx.cancel(r);
  ctx.run();
  for (int fd : fds)
    ::close(fd);
  ::close(sv[0]);
  ::close(sv[1]);
}
BENCHMARK(BM_FallbackCloseAmongIdle)->Arg(16)->Arg(1024)->Arg(4096);

// A timer armed and cancelled (a connection's header or idle timeout) while arg(0) other
// timers are pending, on the epoll fallback: flat in arg(0) too.
void BM_FallbackTimerAmongIdle(benchmark::State& state) {
  using namespace std::chrono_literals;
  context ctx(bench_options(backend_kind::fallback));
  std::vector<std::unique_ptr<timer>> idle;
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    idle.push_back(std::make_unique<timer>(ctx));
    idle.back()->expires_after(1h);
    idle.back()->async_wait([](std::error_code) {});
  }
  ctx.poll();
  timer t(ctx);
  bool done = false;
  for (auto _ : state) {
    done = false;
    t.expires_after(1h);
    t.async_wait([&](std::error_code) { done = true; });
    ctx.poll();
    t.cancel();
    while (!done && ctx.run_one() > 0) {
    }
  }
  for (auto& i : idle)
    i->cancel();
  ctx.run();
}
BENCHMARK(BM_FallbackTimerAmongIdle)->Arg(16)->Arg(1024)->Arg(4096);

}  // namespace
}  // namespace pagewire::runtime

BENCHMARK_MAIN();
