// tls_seal_bench: the userspace TLS sender's CPU alone, without the network. A pagewire
// tls_engine (server) and an OpenSSL client handshake over memory; then the engine encrypts
// --bytes of a --window-byte text window in full records, the output pages dropped as a
// transport would release them. Printed per suite, user CPU s/GB of:
//   cipher   EVP_EncryptUpdate in place on one 16 KiB buffer (what
//            `openssl speed -evp CIPHER -bytes 16384` measures)
//   evp/rec  the sealer's EVP calls per 16 KiB record (new nonce, AAD, four 4 KiB updates,
//            tag) from the window into a 512 KiB ring: the cipher's cost per record and
//            per byte of this memory, with no pagewire code
//   sealer   tls_engine::encrypt with pagewire's record sealer (tls13_record_sealer)
//   openssl  tls_engine::encrypt with record_sealer off (SSL_write)
// and cipher/sealer, cipher/openssl: the fraction of the cipher's limit reached.
// The loops are noinline functions (seal_loop, cipher_loop) so that callgrind can count
// them alone: valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*seal_loop*'
//
//   bazel build --config=release //tests/bench:tls_seal_bench
//   bazel-bin/tests/bench/tls_seal_bench --bytes 1G --window 64M --repeat 3 [--only sealer]
//       [--suite CHACHA20]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <vector>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_engine.h>
#include <pagewire/fs/page_pool.h>

#include "tests/bench/bench_inputs.h"

namespace {

namespace filters = pagewire::filters;
namespace fs = pagewire::fs;

double user_cpu() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6;
}

struct suite {
  const char* tls;
  const char* evp;
};
const suite kSuites[] = {{"TLS_AES_128_GCM_SHA256", "AES-128-GCM"},
                         {"TLS_AES_256_GCM_SHA384", "AES-256-GCM"},
                         {"TLS_CHACHA20_POLY1305_SHA256", "ChaCha20-Poly1305"}};

// Feeds each side's output to the other until both are done.
bool handshake(filters::tls_engine& e, SSL* peer, BIO* peer_in, BIO* peer_out,
               fs::page_pool& pool) {
  for (int i = 0; i < 20; ++i) {
    std::error_code ec;
    const auto st = e.handshake(ec);
    const fs::chain produced = e.output().take();
    for (const fs::segment& s : produced.segments()) {
      const auto b = std::get<fs::slice>(s).bytes();
      BIO_write(peer_in, b.data(), static_cast<int>(b.size()));
    }
    const int r = SSL_do_handshake(peer);
    char buf[16384];
    for (int n; (n = BIO_read(peer_out, buf, sizeof buf)) > 0;) {
      fs::chain c;
      for (int off = 0; off < n; off += static_cast<int>(fs::kPageSize)) {
        fs::page_ref p = pool.allocate();
        const int k = std::min(n - off, static_cast<int>(fs::kPageSize));
        std::memcpy(p.data(), buf + off, static_cast<std::size_t>(k));
        c.append(fs::slice(p, 0, static_cast<std::size_t>(k)));
      }
      e.feed(std::move(c));
    }
    if (st == filters::tls_engine::status::ok && r == 1) return true;
    if (st == filters::tls_engine::status::error) return false;
  }
  return false;
}

// The text window in pool pages (the pool's arenas are 2 MiB, backed by transparent huge
// pages where the kernel allows, like filters_bench's window), cut into 16 KiB records that
// each lie in one arena: the spans the engine gets.
struct window {
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{2} << 30}};
  std::vector<fs::page_ref> pages;
  std::vector<std::span<const std::byte>> records;

  bool fill(std::size_t bytes, std::size_t offset) {
    const auto text = pagewire::bench::text_bytes(bytes);
    for (std::size_t off = 0; off < bytes; off += fs::kPageSize) {
      fs::page_ref p = pool.allocate();
      if (!p) return false;
      std::memcpy(p.data(), text.data() + off, std::min(fs::kPageSize, bytes - off));
      pages.push_back(std::move(p));
    }
    constexpr std::size_t kRecord = 16384, kPages = kRecord / fs::kPageSize;
    for (std::size_t i = 0; i + kPages < pages.size(); i += kPages) {
      bool contiguous = true;
      for (std::size_t k = 1; k <= kPages; ++k)
        contiguous &= pages[i + k].data() == pages[i].data() + k * fs::kPageSize;
      if (contiguous) records.emplace_back(pages[i].data() + offset, kRecord);
    }
    return !records.empty();
  }
};

// Encrypts `total` bytes of the window in records; drops the output every 512 KiB.
__attribute__((noinline)) bool seal_loop(filters::tls_engine& e, const window& w,
                                         std::uint64_t total) {
  std::size_t i = 0;
  for (std::uint64_t done = 0; done < total;) {
    const auto rec = w.records[i];
    i = (i + 1) % w.records.size();
    const std::size_t n = std::min<std::uint64_t>(rec.size(), total - done);
    std::size_t accepted = 0;
    std::error_code ec;
    if (e.encrypt(rec.first(n), accepted, ec) != filters::tls_engine::status::ok || accepted != n) {
      return false;
    }
    done += accepted;
    if (e.output().pending() >= 512 * 1024) e.output().take();
  }
  e.output().take();
  return true;
}

__attribute__((noinline)) bool cipher_loop(const char* evp, std::uint64_t total) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, evp, nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  unsigned char key[32] = {1}, iv[12] = {2};
  std::vector<unsigned char> buf(16384, 'x');
  bool ok = c && ctx && EVP_EncryptInit_ex(ctx, c, nullptr, key, iv) == 1;
  for (std::uint64_t done = 0; ok && done < total; done += buf.size()) {
    int outl = 0;
    ok = EVP_EncryptUpdate(ctx, buf.data(), &outl, buf.data(), static_cast<int>(buf.size())) == 1;
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(c);
  return ok;
}

// The sealer's EVP calls per record without pagewire: the window's records into a
// 512 KiB ring, four 4 KiB updates each (the baseline for the sealer's own overhead).
__attribute__((noinline)) bool evp_records_loop(const char* evp, const window& w,
                                                std::uint64_t total) {
  EVP_CIPHER* c = EVP_CIPHER_fetch(nullptr, evp, nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  unsigned char key[32] = {1}, iv[12] = {2}, tag[16], aad[5] = {23, 3, 3, 0, 0};
  std::vector<unsigned char> ring(512 * 1024);
  bool ok = c && ctx && EVP_EncryptInit_ex(ctx, c, nullptr, key, nullptr) == 1;
  std::size_t i = 0, o = 0;
  for (std::uint64_t done = 0; ok && done < total; done += 16384) {
    const auto* in = reinterpret_cast<const unsigned char*>(w.records[i].data());
    i = (i + 1) % w.records.size();
    int l = 0;
    ok = EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv) == 1 &&
         EVP_EncryptUpdate(ctx, nullptr, &l, aad, 5) == 1;
    for (std::size_t k = 0; ok && k < 16384; k += 4096)
      ok = EVP_EncryptUpdate(ctx, ring.data() + o + k, &l, in + k, 4096) == 1;
    ok = ok && EVP_EncryptFinal_ex(ctx, tag, &l) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
    o = (o + 16384) % ring.size();
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(c);
  return ok;
}

// User CPU seconds of one sealing run (sealer on or off); negative on failure.
double run_tls(const suite& s, bool sealer, const window& w, std::uint64_t total,
               const std::string& cert, const std::string& key) {
  filters::tls_options o;
  o.cert_file = cert;
  o.key_file = key;
  o.ciphersuites = s.tls;
  o.record_sealer = sealer;
  std::error_code ec;
  auto ctx = filters::tls_context::create(o, ec);
  if (!ctx) return -1;
  fs::page_pool pool(fs::page_pool_options{.max_bytes = std::size_t{64} << 20});
  filters::tls_engine e(ctx, pool, ec);
  SSL_CTX* pctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_ciphersuites(pctx, s.tls);
  SSL* peer = SSL_new(pctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(peer, in, out);
  SSL_set_connect_state(peer);
  double t = -1;
  if (!ec && handshake(e, peer, in, out, pool) && e.sealer().active == sealer) {
    e.set_record_plaintext(e.record_plaintext(0));
    const double u0 = user_cpu();
    if (seal_loop(e, w, total)) t = user_cpu() - u0;
  }
  SSL_free(peer);
  SSL_CTX_free(pctx);
  return t;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

std::uint64_t parse_bytes(const std::string& v) {
  std::uint64_t n = std::strtoull(v.c_str(), nullptr, 10);
  if (v.back() == 'G') n *= 1000000000ull;
  if (v.back() == 'M') n *= 1ull << 20;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::uint64_t total = 1000000000ull;
  std::size_t window_bytes = std::size_t{64} << 20;
  int repeat = 3;
  std::string only;          // cipher, evp, sealer or openssl: run only that loop
  std::string suite_filter;  // run only the suites whose name contains this
  std::size_t offset = 0;    // each record's plaintext starts this far into its first page
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--bytes") total = parse_bytes(v);
    if (k == "--window") window_bytes = parse_bytes(v);
    if (k == "--repeat") repeat = std::max(1, std::atoi(v.c_str()));
    if (k == "--only") only = v;
    if (k == "--suite") suite_filter = v;
    if (k == "--offset") offset = parse_bytes(v);
  }
  const auto [cert, key] = pagewire::bench::self_signed("tls_seal_bench");
  if (cert.empty()) return 1;
  window win;
  if (offset >= fs::kPageSize || !win.fill(window_bytes, offset)) return 1;
  const double gb = total / 1e9;
  std::printf("%-30s %10s %10s %10s %10s %14s %14s\n", "suite", "cipher", "evp/rec", "sealer",
              "openssl", "cipher/sealer", "cipher/openssl");
  for (const suite& s : kSuites) {
    if (std::string(s.tls).find(suite_filter) == std::string::npos) continue;
    std::vector<double> c, on, off, rec;
    for (int i = 0; i < repeat; ++i) {  // interleaved, so load changes hit all three alike
      if (only.empty() || only == "cipher") {
        const double u0 = user_cpu();
        if (cipher_loop(s.evp, total)) c.push_back(user_cpu() - u0);
      }
      if (only.empty() || only == "evp") {
        const double u0 = user_cpu();
        if (evp_records_loop(s.evp, win, total)) rec.push_back(user_cpu() - u0);
      }
      if (only.empty() || only == "sealer") on.push_back(run_tls(s, true, win, total, cert, key));
      if (only.empty() || only == "openssl") {
        off.push_back(run_tls(s, false, win, total, cert, key));
      }
    }
    const double mc = median(c) / gb, mon = median(on) / gb, moff = median(off) / gb,
                 mrec = median(rec) / gb;
    auto ratio = [](double a, double b) { return a > 0 && b > 0 ? a / b : 0.0; };
    std::printf("%-30s %10.3f %10.3f %10.3f %10.3f %14.3f %14.3f\n", s.tls, mc, mrec, mon, moff,
                ratio(mc, mon), ratio(mc, moff));
  }
  std::remove(cert.c_str());
  std::remove(key.c_str());
  return 0;
}
