#pragma once

// Small operations shared by the runtime tests.

#include <climits>
#include <cstddef>
#include <fcntl.h>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/operation.h>

namespace pagewire::runtime::testing {

inline std::string backend_name(backend_kind k) {
  return k == backend_kind::fallback ? "fallback" : "io_uring";
}

inline context_options options_for(backend_kind k) {
  context_options o;
  o.backend = k;
  o.read_environment = false;
  return o;
}

struct nop_op : operation {
  int result_seen = INT_MIN;
  int completions = 0;
  bool done_at_complete = false;
  std::vector<int>* log = nullptr;
  int tag = 0;
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_nop(sqe); }
  void complete(int r, unsigned) override {
    result_seen = r;
    ++completions;
    done_at_complete = done();
    if (log) log->push_back(tag);
  }
};

/// read(2) (Write = false) or write(2) of `len` bytes at `off` (-1: current position),
/// resumable.
template <bool Write>
struct rw_op : operation {
  using byte_ptr = std::conditional_t<Write, const char*, char*>;
  rw_op(int f, byte_ptr b, std::size_t n, long long o = -1) : fd(f), buf(b), len(n), off(o) {}
  int fd;
  byte_ptr buf;
  std::size_t len;
  long long off;
  std::size_t advanced = 0;
  int result_seen = INT_MIN;
  int completions = 0;
  void prepare(io_uring_sqe* sqe) override {
    const auto n = static_cast<unsigned>(len - advanced);
    const auto at = off < 0 ? ~0ull : static_cast<unsigned long long>(off) + advanced;
    if constexpr (Write) {
      io_uring_prep_write(sqe, fd, buf + advanced, n, at);
    } else {
      io_uring_prep_read(sqe, fd, buf + advanced, n, at);
    }
  }
  bool consume(std::size_t n) override {
    advanced += n;
    return true;
  }
  void complete(int r, unsigned) override {
    result_seen = r;
    ++completions;
  }
};
using read_op = rw_op<false>;
using write_op = rw_op<true>;

struct pipe_fds {
  int r = -1, w = -1;
  pipe_fds() {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) == 0) {
      r = p[0];
      w = p[1];
    }
  }
  ~pipe_fds() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
};

/// Runs `ctx` one handler at a time until `pred()` or `limit` handlers.
template <class Pred>
bool run_until(context& ctx, Pred pred, int limit = 100000) {
  for (int i = 0; i < limit && !pred(); ++i) {
    if (ctx.run_one() == 0) break;
  }
  return pred();
}

}  // namespace pagewire::runtime::testing
