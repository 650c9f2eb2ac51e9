// net/transmit's own CPU per message, without the kernel's: one transmit_op sending message
// after message on one socket, the way zcbench's pw_sendfile, pw_splice_pipe and pw_gather
// paths do, with sendfile(2), splice(2) and sendmsg(2) replaced at link time (-Wl,--wrap, see
// BUILD) by functions that take every byte at once. What is left is pagewire's bookkeeping
// around each system call: the figure behind a pagewire path's shortfall against its raw loop
// at small messages, where the kernel's own work per call is a few microseconds. Build and run
// with --config=release:
//   bazel run --config=release //tests/bench:transmit_bench
// step_one_message.py (beside this file) steps one message of it in gdb and counts the
// instructions and cache lines pagewire touches between two system calls.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

#include <benchmark/benchmark.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/transmit.h>
#include <pagewire/runtime/context.h>

#include "tests/bench/bench_inputs.h"

// The replaced system calls: everything asked for is taken (and counted, so a run that never
// reached them shows). [[gnu::used]]: with link-time optimization (the release config) the
// linker's --wrap redirection is resolved after GCC has seen no caller of __wrap_*.
namespace {
std::uint64_t stub_calls = 0;
}  // namespace

extern "C" [[gnu::used]] ssize_t __wrap_sendfile(int, int, off_t* offset, size_t count) {
  ++stub_calls;
  if (offset) *offset += static_cast<off_t>(count);
  return static_cast<ssize_t>(count);
}

extern "C" [[gnu::used]] ssize_t __wrap_splice(int, loff_t* in_offset, int, loff_t* out_offset,
                                               size_t count, unsigned) {
  ++stub_calls;
  if (in_offset) *in_offset += static_cast<loff_t>(count);
  if (out_offset) *out_offset += static_cast<loff_t>(count);
  return static_cast<ssize_t>(count);
}

extern "C" [[gnu::used]] ssize_t __wrap_sendmsg(int, const struct msghdr* m, int) {
  ++stub_calls;
  std::size_t n = 0;
  for (std::size_t i = 0; i < m->msg_iovlen; ++i)
    n += m->msg_iov[i].iov_len;
  return static_cast<ssize_t>(n);
}

namespace pagewire::net {
namespace {

constexpr std::size_t kFileBytes = std::size_t{4} << 20;

// A resident file of kFileBytes (its residency is checked by a real cachestat), removed at exit.
const std::string& bench_file() {
  static const std::string path =
      bench::scratch_file("pagewire_transmit_bench", kFileBytes, std::vector<char>(1 << 20, 'x'));
  return path;
}

class counting_op final : public transmit_op {
 public:
  using transmit_op::transmit_op;
  bool done = false;

 protected:
  void on_complete(std::error_code ec, std::uint64_t) override {
    if (ec) std::abort();
    done = true;
  }
};

// One transmit_op on a non-blocking socket (a socketpair end: the stubs never touch it).
struct harness {
  explicit harness(options o) : opts(o), ctx(context_options()), pipes(opts), op(ctx, opts, pipes) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
      std::abort();
  }
  ~harness() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  static runtime::context_options context_options() {
    runtime::context_options o;
    o.backend = runtime::backend_kind::io_uring;
    return o;
  }
  // Sends `message` to completion, as an application's loop would: start, then run the loop.
  void send(fs::chain& message) {
    op.done = false;
    op.start(fds[0], std::move(message));  // message gets the last one's storage back
    while (!op.done && ctx.run_one() > 0) {
    }
    if (!op.done) std::abort();
  }

  options opts;
  runtime::context ctx;
  pipe_pool pipes;
  counting_op op;
  int fds[2] = {-1, -1};
};

void report(benchmark::State& state, std::uint64_t calls_before) {
  const auto calls = stub_calls - calls_before;
  state.counters["calls/msg"] =
      benchmark::Counter(static_cast<double>(calls) / static_cast<double>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
}

// Message after message of one file range each (state.range(0) bytes), on the file path
// `path` pins, as zcbench pins it.
void send_file_ranges(benchmark::State& state, options::file_path path) {
  options o;
  o.file_range_path = path;
  harness h(o);
  std::error_code ec;
  auto file = fs::file::open(bench_file().c_str(), ec);
  if (!file) std::abort();
  const std::uint64_t size = static_cast<std::uint64_t>(state.range(0));
  fs::chain message;
  std::uint64_t offset = 0;
  const auto calls = stub_calls;
  for (auto _ : state) {
    message.append(fs::file_range(file, offset, size));
    h.send(message);
    offset = (offset + size) % kFileBytes;
  }
  report(state, calls);
}

// pw_sendfile's path: a 4 KiB file range by one sendfile(2).
void BM_TransmitFileRangeSendfile(benchmark::State& state) {
  send_file_ranges(state, options::file_path::sendfile);
}
BENCHMARK(BM_TransmitFileRangeSendfile)->Arg(4096);

// pw_splice_pipe's path: a 4 KiB file range through the pipe by two splice(2) calls
// (file -> pipe, pipe -> socket).
void BM_TransmitFileRangeSplice(benchmark::State& state) {
  send_file_ranges(state, options::file_path::splice);
}
BENCHMARK(BM_TransmitFileRangeSplice)->Arg(4096);

// pw_gather's path: a 4 KiB share of a pool page, sent inline by sendmsg.
void BM_TransmitSliceGather(benchmark::State& state) {
  harness h(options{});
  fs::page_pool pool;
  fs::page_ref page = pool.allocate();
  if (!page) std::abort();
  const fs::slice whole(std::move(page), 0, fs::kPageSize);
  fs::chain message;
  const auto calls = stub_calls;
  for (auto _ : state) {
    message.append(whole);
    h.send(message);
  }
  report(state, calls);
}
BENCHMARK(BM_TransmitSliceGather);

}  // namespace
}  // namespace pagewire::net

BENCHMARK_MAIN();
