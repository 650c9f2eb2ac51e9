// filters_bench: sends --bytes over loopback TCP through each filter stack in one run and
// prints GB/s, sender CPU s/GB (user+sys, and user alone: the part comparable to
// `openssl speed`), receiver CPU s/GB and user-space bytes copied per byte.
// The sender runs a pagewire context with the stack over plain_transport; the receiver is
// a plain recv() loop that counts wire bytes to EOF (no decoding: it measures the sender).
// Input: a 64 MiB window of text-like bytes (compressible, like HTML/JSON) repeated; TLS
// paths get the same bytes. GB = 1e9 bytes of application (plaintext) data.
//
//   bazel build --config=release //tests/bench:filters_bench
//   bazel-bin/tests/bench/filters_bench --bytes 1G --repeat 3 [--paths pw_plain,pw_tls_aes128gcm]
//       [--record-sealer off]   (TLS: OpenSSL's SSL_write seals, as before the record sealer)
//
// zcbench now measures the same stacks (pw_tls_*, pw_gzip*, pw_zstd*) with a receiver that
// decodes, next to raw OpenSSL/zlib/zstd loops, and `make bench` runs those instead; this
// binary stays as a quick standalone check of the sender side alone.

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>

#include "tests/bench/bench_inputs.h"

namespace {

namespace asio = boost::asio;
namespace filters = pagewire::filters;
namespace fs = pagewire::fs;
namespace net = pagewire::net;
namespace runtime = pagewire::runtime;

double thread_cpu(bool user_only = false) {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  const double user = u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
  return user_only ? user : user + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

struct bench_path {
  const char* name;
  const char* tls_suite;  // TLS 1.3 suite, or null
  filters::coding coding;
  int level;
};

const bench_path kPaths[] = {
    {"pw_plain", nullptr, filters::coding::identity, 0},
    {"pw_tls_aes128gcm", "TLS_AES_128_GCM_SHA256", filters::coding::identity, 0},
    {"pw_tls_aes256gcm", "TLS_AES_256_GCM_SHA384", filters::coding::identity, 0},
    {"pw_tls_chacha20", "TLS_CHACHA20_POLY1305_SHA256", filters::coding::identity, 0},
    {"pw_gzip1", nullptr, filters::coding::gzip, 1},
    {"pw_gzip6", nullptr, filters::coding::gzip, 6},
    {"pw_zstd1", nullptr, filters::coding::zstd, 1},
    {"pw_zstd3", nullptr, filters::coding::zstd, 3},
};

struct result {
  double seconds = 0, send_cpu = 0, send_user = 0, recv_cpu = 0;
  std::uint64_t wire = 0, copied = 0;
  bool ok = false;
  bool sealer = false;  // TLS: the sender's records sealed by pagewire
  std::string sealer_reason;
  std::uint64_t openssl_writes = 0;
};

bool g_record_sealer = true;  // --record-sealer on|off

result run_one(const bench_path& p, std::uint64_t total, const std::vector<std::byte>& window,
               const std::string& cert, const std::string& key) {
  result r;
  int l = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(l, 1);
  socklen_t len = sizeof a;
  ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
  int s = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(l);

  // Receiver: a plain byte counter, or (TLS paths) a pagewire TLS client on its own
  // context that decrypts to the end, so the handshake happens and records are consumed.
  std::thread receiver([&] {
    const double c0 = thread_cpu();
    if (!p.tls_suite) {
      std::vector<char> buf(256 * 1024);
      for (;;) {
        const ssize_t n = ::recv(c, buf.data(), buf.size(), 0);
        if (n <= 0) break;
        r.wire += static_cast<std::uint64_t>(n);
      }
      ::shutdown(c, SHUT_WR);  // the sender waits for our end before it closes
    } else {
      runtime::context rctx;
      fs::page_pool rpool(fs::page_pool_options{.max_bytes = std::size_t{256} << 20});
      net::options ro;
      ro.header_timeout = ro.idle_timeout = std::chrono::milliseconds(0);
      net::pipe_pool rpipes(ro);
      net::connection rconn(rctx, c, ro, rpipes, nullptr);
      filters::tls_options co;
      co.role = filters::tls_role::client;
      co.record_sealer = g_record_sealer;
      std::error_code cec;
      filters::tls_layer client(std::make_unique<filters::plain_transport>(rconn, rpool),
                                filters::tls_context::create(co, cec), {}, rpool, nullptr, cec);
      asio::co_spawn(
          rctx.get_executor(),
          [&]() -> asio::awaitable<void> {
            for (;;) {
              auto [e, data] = co_await client.read(asio::use_awaitable);
              if (e) break;
              r.wire += data.size();
            }
            co_await rconn.async_close(asio::use_awaitable);
          },
          asio::detached);
      rctx.run();
      c = -1;  // closed by the connection
    }
    r.recv_cpu = thread_cpu() - c0;
  });

  runtime::context ctx;
  fs::page_pool pool(fs::page_pool_options{.max_bytes = std::size_t{512} << 20});
  net::options no;
  no.header_timeout = no.idle_timeout = std::chrono::milliseconds(0);
  net::pipe_pool pipes(no);
  net::connection conn(ctx, s, no, pipes, nullptr);
  std::unique_ptr<filters::stream> st = std::make_unique<filters::plain_transport>(conn, pool);
  filters::tls_layer* sender_tls = nullptr;
  std::error_code ec;
  if (p.tls_suite) {
    filters::tls_options o;
    o.cert_file = cert;
    o.key_file = key;
    o.ciphersuites = p.tls_suite;
    o.record_sealer = g_record_sealer;
    auto tls =
        std::make_unique<filters::tls_layer>(std::move(st), filters::tls_context::create(o, ec),
                                             filters::tls_layer_options{}, pool, nullptr, ec);
    sender_tls = tls.get();
    st = std::move(tls);
  }
  if (p.coding != filters::coding::identity) {
    filters::content_filter_options o;
    o.encode = filters::encoder_options{p.coding, p.level};
    st = std::make_unique<filters::content_filter>(std::move(st), o, pool, nullptr, ec);
  }
  // The window as page slices, shared (refcounts only) by every write.
  fs::chain win;
  for (std::size_t off = 0; off < window.size(); off += fs::kPageSize) {
    fs::page_ref pg = pool.allocate();
    std::memcpy(pg.data(), window.data() + off, fs::kPageSize);
    win.append(fs::slice(pg, 0, fs::kPageSize));
  }
  bool done = false;
  const auto t0 = std::chrono::steady_clock::now();
  const double s0 = thread_cpu();
  const double u0 = thread_cpu(true);
  const auto copies0 = fs::stats::copied_bytes();
  asio::co_spawn(
      ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        std::uint64_t sent = 0;
        while (sent < total) {
          fs::chain part = win;
          if (part.size() > total - sent) part = part.split(total - sent);
          const bool last = sent + part.size() == total;
          auto [e, n] = co_await st->write(
              std::move(part),
              last ? filters::write_flags::end_of_message : filters::write_flags::more,
              asio::use_awaitable);
          if (e) {
            std::fprintf(stderr, "%s: %s\n", p.name, e.message().c_str());
            break;
          }
          sent += n;
        }
        co_await st->shutdown(asio::use_awaitable);
        done = sent == total;
        // Wait for the peer's end, then close: no operation outlives the socket.
        for (int i = 0; i < 1000000; ++i) {
          auto [e, d] = co_await st->read(asio::use_awaitable);
          if (e) break;
        }
        co_await conn.async_close(asio::use_awaitable);
      },
      asio::detached);
  ctx.run();
  r.send_cpu = thread_cpu() - s0;
  r.send_user = thread_cpu(true) - u0;
  r.copied = fs::stats::copied_bytes() - copies0;
  if (sender_tls) {
    const filters::tls_stats ts = sender_tls->stats();
    r.sealer = ts.record_sealer;
    r.sealer_reason = ts.record_sealer_reason;
    r.openssl_writes = ts.openssl_writes_after_takeover;
  }
  receiver.join();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.ok = done;
  if (c >= 0) ::close(c);
  st.reset();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::uint64_t total = std::uint64_t{1} << 30;
  int repeat = 3;
  std::string only;  // --paths a,b: run only these (default: all)
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--bytes") {
      total = std::strtoull(v.c_str(), nullptr, 10);
      if (v.back() == 'G') total *= 1000000000ull;
      if (v.back() == 'M') total *= 1000000ull;
    } else if (k == "--repeat") {
      repeat = std::atoi(v.c_str());
    } else if (k == "--paths") {
      only = "," + v + ",";
    } else if (k == "--record-sealer") {
      g_record_sealer = v != "off";
    }
  }
  const auto [cert, key] = pagewire::bench::self_signed("filters_bench");
  if (cert.empty()) return 1;
  const auto window = pagewire::bench::text_bytes(std::size_t{64} << 20);
  std::printf("%-18s %8s %10s %10s %10s %10s %12s\n", "path", "GB/s", "send s/GB", "send usr",
              "recv s/GB", "wire/app", "copied/byte");
  for (const bench_path& p : kPaths) {
    if (!only.empty() && only.find("," + std::string(p.name) + ",") == std::string::npos) continue;
    std::vector<result> rs;
    for (int i = 0; i < repeat; ++i)
      rs.push_back(run_one(p, total, window, cert, key));
    std::sort(rs.begin(), rs.end(), [](auto& a, auto& b) { return a.seconds < b.seconds; });
    const result& m = rs[rs.size() / 2];
    const double gb = total / 1e9;
    std::printf("%-18s %8.3f %10.3f %10.3f %10.3f %10.4f %12.3f%s\n", p.name, gb / m.seconds,
                m.send_cpu / gb, m.send_user / gb, m.recv_cpu / gb, double(m.wire) / total,
                double(m.copied) / total, m.ok ? "" : "  (FAILED)");
    if (p.tls_suite) {
      std::printf("  sender: %s (openssl writes after takeover: %llu)\n", m.sealer_reason.c_str(),
                  static_cast<unsigned long long>(m.openssl_writes));
    }
  }
  std::remove(cert.c_str());
  std::remove(key.c_str());
  return 0;
}
