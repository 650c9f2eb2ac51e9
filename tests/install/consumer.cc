// A program built the way a user outside this repository builds one, checked by `make test`:
//  - bazel/install_test.sh: only the installed headers, `pkg-config --cflags --libs pagewire`
//    and libpagewire.so;
//  - bazel/workspace_test.sh: a Bazel workspace of its own with `@pagewire//:pagewire`.
// It touches every layer, so a symbol missing from the library fails the link and a broken
// layer fails the run. Prints "ok" and exits 0 on success.

#include <cstdio>
#include <system_error>

#include <pagewire/filters/tls_context.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

namespace pw = pagewire;

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "consumer: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  pw::runtime::context ctx;
  bool ran = false;
  ctx.post([&] { ran = true; });
  ctx.run();
  if (!ran) return fail("runtime: a posted function did not run");

  pw::fs::page_pool pool;
  pw::fs::chain c;
  c.append(pw::fs::slice(pool.allocate(), 0, 100));
  c.append(pw::fs::slice::from_static("\r\n", 2));
  if (c.size() != 102) return fail("fs: the chain does not hold 102 bytes");

  std::error_code ec;
  pw::net::pipe_pool pipes{pw::net::options{}};
  pw::net::pipe_handle p = pipes.acquire(ec);
  if (ec || p.capacity == 0) return fail("net: no pipe from the pool");
  pipes.release(p, true);

  pw::filters::tls_options o;
  o.role = pw::filters::tls_role::client;
  if (!pw::filters::tls_context::create(o, ec)) return fail("filters: no client TLS context");

  std::puts("ok");
  return 0;
}
