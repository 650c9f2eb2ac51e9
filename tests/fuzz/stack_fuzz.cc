// libFuzzer target for pagewire's stackable filter layers end to end: a writer stack and a
// reader stack, content_filter (identity, gzip, deflate or zstd) optionally over tls_layer
// (one side the TLS server, the other the client), joined by filters::memory_transport
// (max_send > 0 cuts every write into seeded random 1..max_send sends). The script writes
// chains of data-chosen pieces (slices of data pages at chosen offsets, several per page, runs
// of whole pages, ranges of a temp file, empty chains) with write_flags more or
// end_of_message, reads once or until some bytes arrived, squeezes the layers' page pool to a
// few free pages and gives them back, runs explicit TLS handshakes and shuts the writer down.
// After every operation the loop runs until idle (a bounded number of handlers).
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh stack` with clang++-14; its seeds (corpus/stack/)
// run in every `make test` as //tests/fuzz:stack_corpus_test.
//
// Invariants (each aborts through check()):
//  - each write, read, shutdown and handshake completes exactly once (the handler runs once,
//    only for an operation that is outstanding, and none is left outstanding at the end);
//  - a write that succeeds reports exactly the bytes of its chain; a failed one at most that;
//  - a read that succeeds hands up a non-empty chain; everything read, in order, is a prefix
//    of the concatenation of everything written (decoded through TLS and the decompressor),
//    byte-exact, errors or not (a failed write: with the bytes it reported only, unless it
//    broke the writer's stack, below);
//    at the end (no error seen) it is exactly that concatenation, and after the
//    writer's shutdown the reader gets errc::eof after the last byte (the only other ending:
//    the writer shut down before its TLS handshake, then no byte came and the reader's
//    handshake ends with tls_handshake or truncated);
//  - no operation fails while the pool has pages: the first error of an input is
//    errc::pool_exhausted or ENOMEM (page_cache), or tls_handshake (a handshake starved of
//    pages: tls_layer.h names no pool error for it), and comes while the pool is squeezed; after
//    that (layers keep their errors) errors may come from the documented set (pool_exhausted,
//    ENOMEM, tls_handshake, tls_protocol, truncated, corrupt_data, EPIPE, ECANCELED after
//    cancel());
//  - a failed write that breaks the writer's stack (any, under a content coding; one short of
//    pages under OpenSSL's TLS 1.2 writer: trip_layer::break_writes) makes every later write
//    fail with the same error and 0 bytes, and nothing past that write reaches the reader
//    (of it, possibly more than it reported); under pagewire's TLS 1.3 sealer writes go on;
//  - bounded work: after each operation the loop goes idle within kMaxTurns handlers;
//  - nothing leaks: once the stacks, the page cache and the context are gone, no page of
//    either pool is in use (pages_in_use == 0; the pools would abort at exit too).
//
// Input: byte 0: bits 0-1 the coding (identity, gzip, zstd, deflate), bit 2 TLS, bit 3 the
// writer is the TLS server (else the client), bits 4-6 max_send (0, 1, 7, 100, 5000, 0, 3,
// 16384), bit 7 the client's highest version is TLS 1.2 (OpenSSL's record writer). Byte 1:
// bits 0-1 the level (-1, 1, 6, 9; zstd 3 for 9), bits 2-3 content piece_bytes (256K, 4096,
// 1000, 65536), bits 4-5 output_limit (256K, 4096, 100, 16384), bits 6-7 read_output_limit of
// both layers (256K, 4096, 100, 16384). Byte 2: bits 0-1 TLS piece_bytes (512K, 4096, 1000,
// 20000), bits 2-3 TLS mss (0, 1400, 100, 9000), bits 4-7 the transport's seed. Then up to
// kMaxOps operations, an opcode byte (modulo 7) and its arguments (u16 little endian; zeros
// once the input is used up):
//   0 h:u8 then (h & 7) pieces kind:u8 a:u16 b:u16: a write of those pieces, flags more if
//     h & 8. kind & 3: 0 a slice [a % 4096, + b % rest) of a fresh data page; 1 another slice
//     of the last page (same rule); 2 a range of the temp file at a % size, b % (rest + 1)
//     bytes (times 16 if kind & 4); 3 a run of a % 32 + 1 fresh pages, the first from b % 4096
//   1 read once | 2 n:u16 read until n * 16 more bytes arrived (or a read stays pending)
//   3 k:u8 squeeze: the layers' pool keeps k % 9 free pages | 4 the pool gets them back
//   5 the writer shuts down | 6 s:u8 explicit TLS handshake, the reader's if s & 1.
// Writes total at most kMaxBytes (less when max_send is tiny); pieces past it are clipped.

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/memory_transport.h>
#include <pagewire/filters/stream.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/file_range.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>
#include <pagewire/runtime/task.h>

#include "fuzz_check.h"
#include "fuzz_script.h"
#include "fuzz_tls.h"

namespace filters = pagewire::filters;
namespace fs = pagewire::fs;
namespace runtime = pagewire::runtime;
using filters::errc;
using fuzz_script::script;

namespace {

// Bytes of the harness's data pages and temp file.
std::byte pattern(std::uint64_t i) {
  return fuzz_script::pattern(i, 0x3c);
}

constexpr std::size_t kMaxOps = 64;
constexpr int kOps = 7;
constexpr std::uint64_t kMaxBytes = 256 * 1024;
constexpr std::uint64_t kMaxBytesTinySends = 24 * 1024;  // max_send 1, 3 or 7
constexpr std::size_t kMaxTurns = 2'000'000;             // handlers per settle()
constexpr std::size_t kMaxReadsPerOp = 100'000;
constexpr std::size_t kFileSize = 150'000;  // not a multiple of the page size

constexpr std::size_t kMaxSend[8] = {0, 1, 7, 100, 5000, 0, 3, 16384};
constexpr int kLevels[4] = {-1, 1, 6, 9};
constexpr std::size_t kPiece[4] = {256 * 1024, 4096, 1000, 65536};
constexpr std::size_t kOutLimit[4] = {256 * 1024, 4096, 100, 16384};
constexpr std::size_t kReadLimit[4] = {256 * 1024, 4096, 100, 16384};
constexpr std::size_t kTlsPiece[4] = {512 * 1024, 4096, 1000, 20000};
constexpr std::size_t kMss[4] = {0, 1400, 100, 9000};

// Process-wide: TLS contexts (costly to build), the temp file, and the pools (a page still
// in use after an input shows as pages_in_use > 0).
struct globals {
  std::shared_ptr<filters::tls_context> server, client13, client12;
  std::shared_ptr<const fs::file> file;
  std::vector<std::byte> file_bytes;
  // The layers' pool: what squeeze() takes nearly all of. Harness data comes from data_pool.
  fs::page_pool pool{
      fs::page_pool_options{.max_bytes = std::size_t{16} << 20, .try_huge_pages = false}};
  fs::page_pool data_pool{
      fs::page_pool_options{.max_bytes = std::size_t{64} << 20, .try_huge_pages = false}};
};
globals* g = nullptr;

void build_globals() {
  g = new globals;
  char dir[] = "/tmp/pagewire-stack-fuzz-XXXXXX";
  check(::mkdtemp(dir) != nullptr);
  const std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
  const std::string body = std::string(dir) + "/body.bin";
  fuzz_tls::write_certificate(cert, key, true);
  filters::tls_options s;
  s.role = filters::tls_role::server;
  s.cert_file = cert;
  s.key_file = key;
  g->server = fuzz_tls::make_context(s);
  filters::tls_options c;
  c.role = filters::tls_role::client;
  c.ca_file = cert;
  c.server_name = "localhost";
  g->client13 = fuzz_tls::make_context(c);
  c.max_version = 12;
  g->client12 = fuzz_tls::make_context(c);
  // The file: known bytes, opened once; its name goes at once (the descriptor stays).
  g->file_bytes.resize(kFileSize);
  for (std::size_t i = 0; i < kFileSize; ++i)
    g->file_bytes[i] = pattern(i ^ 0xf11e0000u);
  FILE* f = std::fopen(body.c_str(), "wb");
  check(f && std::fwrite(g->file_bytes.data(), 1, kFileSize, f) == kFileSize);
  std::fclose(f);
  std::error_code ec;
  g->file = fs::file::open(body.c_str(), ec);
  check(!ec && g->file);
  ::unlink(cert.c_str());
  ::unlink(key.c_str());
  ::unlink(body.c_str());
  ::rmdir(dir);
}

struct config {
  filters::coding coding = filters::coding::identity;
  bool tls = false;
  bool writer_server = false;
  bool tls12 = false;
  std::size_t max_send = 0;
  int level = -1;
  std::size_t piece = 0, out_limit = 0, read_limit = 0, tls_piece = 0, mss = 0;
  std::uint64_t seed = 1;
};

// STACK_FUZZ_TRACE=1 in the environment: every operation and completion on stderr.
const bool g_trace = std::getenv("STACK_FUZZ_TRACE") != nullptr;
#define trace(...)                                  \
  do {                                              \
    if (g_trace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

bool is(const std::error_code& ec, errc e) {
  return ec == filters::make_error_code(e);
}
bool is(const std::error_code& ec, std::errc e) {
  return ec == std::make_error_code(e);
}

class session {
 public:
  explicit session(const config& c) : cfg_(c) {
    max_bytes_ =
        (c.max_send == 1 || c.max_send == 3 || c.max_send == 7) ? kMaxBytesTinySends : kMaxBytes;
    auto [a, b] = filters::memory_transport::make_pair(ctx_, g->pool, {c.max_send, c.seed});
    std::unique_ptr<filters::stream> w = std::move(a), r = std::move(b);
    std::error_code ec;
    if (c.tls) {
      filters::tls_layer_options o;
      o.handshake_timeout = std::chrono::milliseconds(0);  // no timer: the loop goes idle
      o.piece_bytes = c.tls_piece;
      o.mss = c.mss;
      o.read_output_limit = c.read_limit;
      auto client = c.tls12 ? g->client12 : g->client13;
      auto wt = std::make_unique<filters::tls_layer>(
          std::move(w), c.writer_server ? g->server : client, o, g->pool, cache_.get(), ec);
      check(!ec);
      auto rt = std::make_unique<filters::tls_layer>(
          std::move(r), c.writer_server ? client : g->server, o, g->pool, cache_.get(), ec);
      check(!ec);
      wtls_ = wt.get();
      rtls_ = rt.get();
      w = std::move(wt);
      r = std::move(rt);
    }
    filters::content_filter_options wo, ro;
    if (c.coding != filters::coding::identity) {
      wo.encode = filters::encoder_options{c.coding, c.level};
      ro.decode = filters::decoder_options{c.coding};
      ro.decode->max_output = std::uint64_t{1} << 30;
    }
    wo.piece_bytes = ro.piece_bytes = c.piece;
    wo.output_limit = ro.output_limit = c.out_limit;
    wo.read_output_limit = ro.read_output_limit = c.read_limit;
    writer_ =
        std::make_unique<filters::content_filter>(std::move(w), wo, g->pool, cache_.get(), ec);
    check(!ec);
    reader_ =
        std::make_unique<filters::content_filter>(std::move(r), ro, g->pool, cache_.get(), ec);
    check(!ec);
  }

  // Teardown in dependency order: operations first (cancel, run dry), then the stacks, the
  // cache and the context; then no page may be left in use.
  ~session() {
    ballast_.clear();
    squeezed_ = false;
    call([this] {
      writer_->cancel();
      reader_->cancel();
    });
    check(!write_out_ && !read_out_ && !shut_out_ && !hs_out_[0] && !hs_out_[1]);
    call([this] {
      writer_.reset();
      reader_.reset();
    });
    cache_.reset();
    check(ctx_.in_flight() == 0);
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void op(script& in) {
    const int code = in.u8() % kOps;
    trace("op %d (received %zu of %zu, squeezed %d, broken %d)\n", code, received_.size(),
          attempted_.size(), squeezed_, broken_);
    switch (code) {
      case 0:
        return write(in);
      case 1:
        return start_read();
      case 2:
        return read_until(received_.size() + std::size_t{16} * in.u16());
      case 3:
        return squeeze(in.u8() % 9);
      case 4:
        ballast_.clear();
        squeezed_ = false;
        return settle();
      case 5:
        return shutdown();
      default:
        return handshake(in.u8() & 1);
    }
  }

  // After the script: the pool gets its pages back; with no error seen, the writer shuts
  // down and the reader must get every byte written, then the end.
  void finish() {
    ballast_.clear();
    squeezed_ = false;
    settle();
    if (!broken_) {
      read_until(SIZE_MAX);  // lets a write waiting for the handshake complete
      check(broken_ || (!write_out_ && !hs_out_[0]));
    }
    if (!broken_ && !shut_ && !write_out_) shutdown();
    if (!broken_) read_until(SIZE_MAX);
    if (broken_) return;
    check(!write_out_ && !read_out_ && !shut_out_);
    check(shut_);
    check(reader_end_);
    if (writer_established_at_shutdown_) {
      check(is(reader_end_ec_, errc::eof));
      check(received_.size() == attempted_.size());
    } else {
      check(received_.empty());
      check(is(reader_end_ec_, errc::eof) || is(reader_end_ec_, errc::tls_handshake) ||
            is(reader_end_ec_, errc::truncated));
      check(attempted_.empty() || is(reader_end_ec_, errc::eof));
    }
  }

 private:
  // Runs `f` as a task on the loop, then the loop until idle. Every call into the stacks goes
  // this way: what they post from the loop thread lands in the local queue, which poll()
  // empties (a post from outside the loop would wait for a wake-up CQE poll() may not see).
  template <class F>
  void call(F&& f) {
    struct node : runtime::task_node {
      std::remove_reference_t<F>* f = nullptr;
      bool ran = false;
    } n;
    n.f = &f;
    n.fn = [](runtime::task_node* t, bool invoke) {
      auto* self = static_cast<node*>(t);
      if (!invoke) return;
      self->ran = true;
      (*self->f)();
    };
    ctx_.defer(n);
    settle();
    check(n.ran);
  }

  // Runs the loop until nothing is ready and nothing is in flight.
  void settle() {
    std::size_t turns = 0;
    for (;;) {
      const std::size_t n = ctx_.poll();
      turns += n;
      check(turns < kMaxTurns);
      if (n > 0) continue;
      if (ctx_.in_flight() == 0) break;
      turns += ctx_.run_one();  // a file read or a NOP still with the kernel
    }
  }

  // An error: the first must come from the squeezed pool, later ones from the documented set.
  void on_error(const std::error_code& ec, const char* what) {
    // A TLS handshake the pool starves ends as tls_handshake: tls_layer.h promises an errc,
    // and pool_exhausted only for writes after the handshake.
    const bool pool = is(ec, errc::pool_exhausted) || is(ec, std::errc::not_enough_memory) ||
                      (cfg_.tls && is(ec, errc::tls_handshake));
    bool ok;
    if (!broken_) {
      ok = pool && squeezed_;
    } else {
      ok = pool || is(ec, errc::tls_handshake) || is(ec, errc::tls_protocol) ||
           is(ec, errc::truncated) || is(ec, errc::corrupt_data) ||
           is(ec, std::errc::broken_pipe) || is(ec, std::errc::operation_canceled);
    }
    if (!ok) {
      std::fprintf(stderr, "%s: unexpected error %s (%s:%d), squeezed %d, broken %d\n", what,
                   ec.message().c_str(), ec.category().name(), ec.value(), squeezed_, broken_);
    }
    check(ok);
    broken_ = true;
  }

  // The writer shut down before its TLS handshake was done (no close_notify): the reader's
  // handshake ends with the stream, before any byte.
  bool unestablished_end(const std::error_code& ec) const {
    return !broken_ && shut_ && !writer_established_at_shutdown_ && received_.empty() &&
           (is(ec, errc::tls_handshake) || is(ec, errc::truncated));
  }

  // ---- writes --------------------------------------------------------------------------

  fs::page_ref data_page() {
    fs::page_ref p = g->data_pool.allocate();
    check(p);
    for (std::size_t i = 0; i < fs::kPageSize; ++i)
      p.data()[i] = pattern(salt_++);
    return p;
  }

  void add(fs::chain& c, std::vector<std::byte>& bytes, fs::slice s) {
    const auto b = s.bytes();
    bytes.insert(bytes.end(), b.begin(), b.end());
    c.append(std::move(s));
  }

  void write(script& in) {
    const std::uint8_t h = in.u8();
    const std::size_t pieces = h & 7;
    const bool more = h & 8;
    fs::chain c;
    std::vector<std::byte> bytes;
    fs::page_ref last;
    for (std::size_t i = 0; i < pieces; ++i) {
      const std::uint8_t kind = in.u8();
      const std::uint16_t a = in.u16(), b = in.u16();
      const std::uint64_t room =
          max_bytes_ - std::min<std::uint64_t>(max_bytes_, budget_used_ + bytes.size());
      switch (kind & 3) {
        case 0:
        case 1: {
          if ((kind & 3) == 0 || !last) last = data_page();
          const std::size_t off = a % fs::kPageSize;
          std::size_t len = b % (fs::kPageSize - off);
          len = std::min<std::uint64_t>(len, room);
          add(c, bytes, fs::slice(last, off, len));
          break;
        }
        case 2: {
          const std::uint64_t off = a % kFileSize;
          std::uint64_t len = b % (kFileSize - off + 1);
          if (kind & 4) len = std::min<std::uint64_t>(len * 16, kFileSize - off);
          len = std::min(len, room);
          bytes.insert(bytes.end(), g->file_bytes.begin() + static_cast<std::ptrdiff_t>(off),
                       g->file_bytes.begin() + static_cast<std::ptrdiff_t>(off + len));
          c.append(fs::file_range(g->file, off, len));
          break;
        }
        default: {
          const std::size_t pages = a % 32 + 1;
          std::size_t off = b % fs::kPageSize;
          std::uint64_t left = room;
          for (std::size_t k = 0; k < pages && left > 0; ++k) {
            last = data_page();
            const std::size_t len = std::min<std::uint64_t>(fs::kPageSize - off, left);
            add(c, bytes, fs::slice(last, off, len));
            left -= len;
            off = 0;
          }
          break;
        }
      }
    }
    check(c.size() == bytes.size());
    if (write_out_ || shut_ || shut_out_) return settle();  // one write at a time, none after
    budget_used_ += bytes.size();
    write_start_ = attempted_.size();
    attempted_.insert(attempted_.end(), bytes.begin(), bytes.end());
    write_size_ = bytes.size();
    write_out_ = true;
    trace("  write %zu bytes in %zu segments%s\n", write_size_, c.segment_count(),
          more ? ", more" : "");
    call([&] {
      writer_->write(std::move(c),
                     more ? filters::write_flags::more : filters::write_flags::end_of_message,
                     [this](std::error_code ec, std::uint64_t n) { on_written(ec, n); });
    });
  }

  void on_written(std::error_code ec, std::uint64_t n) {
    trace("  write done: %s, %llu of %zu\n", ec.message().c_str(),
          static_cast<unsigned long long>(n), write_size_);
    check(write_out_);
    write_out_ = false;
    // Once a layer's output stream broke, every write fails with that error and sends nothing.
    if (write_error_) check(ec == write_error_ && n == 0);
    if (!ec) {
      check(n == write_size_);
      return;
    }
    check(n <= write_size_);
    // The layers that cannot go on after a failed write (trip_layer::break_writes): a content
    // coding (its member lost output), and OpenSSL's TLS writer short of pages (it holds a
    // record of the write's bytes). Later writes send nothing, but the reader may still get
    // more of this one than its n bytes (a coding counts its input only at trip ends), so all
    // of it stays in attempted_. Elsewhere (pagewire's TLS 1.3 sealer) writes go on, and the
    // rest of this one never leaves: only its first n bytes count.
    if (cfg_.coding != filters::coding::identity ||
        (cfg_.tls && cfg_.tls12 && is(ec, errc::pool_exhausted))) {
      write_error_ = ec;
    } else {
      attempted_.resize(write_start_ + n);
    }
    on_error(ec, "write");
  }

  // ---- reads ---------------------------------------------------------------------------

  void start_read() {
    if (read_out_ || reader_end_) return;
    read_out_ = true;
    call([this] {
      reader_->read([this](std::error_code ec, fs::chain c) { on_read(ec, std::move(c)); });
    });
  }

  void on_read(std::error_code ec, fs::chain c) {
    trace("  read done: %s, %llu bytes\n", ec.message().c_str(),
          static_cast<unsigned long long>(c.size()));
    check(read_out_);
    read_out_ = false;
    if (ec) {
      check(c.empty());
      reader_end_ = true;
      reader_end_ec_ = ec;
      if (is(ec, errc::eof)) {
        // The end: only after the writer's shutdown, and after every byte written.
        if (!broken_) {
          check(shut_);
          check(received_.size() == attempted_.size());
        }
        return;
      }
      if (unestablished_end(ec)) return;
      return on_error(ec, "read");
    }
    check(!c.empty());
    check(c.all_memory());
    const std::size_t from = received_.size();
    for (const fs::segment& s : c.segments()) {
      const auto b = std::get<fs::slice>(s).bytes();
      received_.insert(received_.end(), b.begin(), b.end());
    }
    // Byte-exact prefix of what was written (failed writes: of what they reported), errors or
    // not: no layer hands up a byte that was not written, nor sends one after a broken write.
    check(received_.size() <= attempted_.size());
    for (std::size_t i = from; i < received_.size(); ++i) {
      if (received_[i] != attempted_[i]) {
        std::fprintf(stderr, "byte %zu differs (read %zu..%zu of %zu written)\n", i, from,
                     received_.size(), attempted_.size());
        check(received_[i] == attempted_[i]);
      }
    }
  }

  void read_until(std::size_t target) {
    settle();
    for (std::size_t i = 0; i < kMaxReadsPerOp && received_.size() < target; ++i) {
      if (reader_end_) return;
      start_read();
      if (read_out_) return;  // nothing more arrives for now
    }
  }

  // ---- pool, shutdown, handshake -------------------------------------------------------

  void squeeze(std::size_t keep) {
    while (fs::page_ref p = g->pool.allocate())
      ballast_.push_back(std::move(p));
    ballast_.resize(ballast_.size() - std::min(keep, ballast_.size()));
    squeezed_ = true;
    settle();
  }

  void shutdown() {
    if (shut_ || write_out_ || shut_out_ || hs_out_[0]) return settle();
    shut_ = true;
    shut_out_ = true;
    writer_established_at_shutdown_ = !wtls_ || wtls_->established();
    call([this] {
      writer_->shutdown([this](std::error_code ec) {
        trace("  shutdown done: %s\n", ec.message().c_str());
        check(shut_out_);
        shut_out_ = false;
        if (ec) on_error(ec, "shutdown");
      });
    });
  }

  void handshake(int side) {
    filters::tls_layer* t = side ? rtls_ : wtls_;
    if (!t || hs_out_[side] || (side == 0 && shut_)) return settle();
    hs_out_[side] = true;
    call([this, t, side] {
      t->async_handshake([this, side](std::error_code ec) {
        trace("  handshake %d done: %s\n", side, ec.message().c_str());
        check(hs_out_[side]);
        hs_out_[side] = false;
        if (ec && !(side == 1 && unestablished_end(ec))) {
          on_error(ec, side ? "reader handshake" : "writer handshake");
        }
      });
    });
  }

  const config cfg_;
  std::uint64_t max_bytes_ = kMaxBytes;
  runtime::context ctx_;
  std::unique_ptr<fs::page_cache> cache_ = std::make_unique<fs::page_cache>(
      ctx_, g->pool, fs::page_cache_options{.budget_pages = 64, .readahead_max_pages = 8});
  std::unique_ptr<filters::stream> writer_, reader_;
  filters::tls_layer* wtls_ = nullptr;
  filters::tls_layer* rtls_ = nullptr;
  std::vector<fs::page_ref> ballast_;  // pages squeeze() keeps from the layers
  bool squeezed_ = false;
  bool broken_ = false;          // an operation failed: the stream is no longer checked whole
  std::error_code write_error_;  // the failed write that broke the writer's stack, if one did
  std::uint64_t salt_ = 0;       // data page content
  std::uint64_t budget_used_ = 0;

  std::vector<std::byte> attempted_;  // everything handed to write(), in order
  std::vector<std::byte> received_;   // everything read, in order
  bool write_out_ = false;
  std::size_t write_size_ = 0, write_start_ = 0;
  bool read_out_ = false;
  bool reader_end_ = false;  // a read ended with an error or eof: no more reads
  std::error_code reader_end_ec_;
  bool shut_ = false, shut_out_ = false;
  bool writer_established_at_shutdown_ = false;
  bool hs_out_[2] = {false, false};
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  build_globals();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  ERR_clear_error();
  script in{data, size};
  const std::uint8_t c0 = in.u8(), c1 = in.u8(), c2 = in.u8();
  config c;
  static constexpr filters::coding kCodings[4] = {filters::coding::identity, filters::coding::gzip,
                                                  filters::coding::zstd, filters::coding::deflate};
  c.coding = kCodings[c0 & 3];
  c.tls = c0 & 4;
  c.writer_server = c0 & 8;
  c.max_send = kMaxSend[(c0 >> 4) & 7];
  c.tls12 = c0 & 0x80;
  c.level = kLevels[c1 & 3];
  if (c.coding == filters::coding::zstd && c.level == 9) c.level = 3;
  c.piece = kPiece[(c1 >> 2) & 3];
  c.out_limit = kOutLimit[(c1 >> 4) & 3];
  c.read_limit = kReadLimit[(c1 >> 6) & 3];
  c.tls_piece = kTlsPiece[c2 & 3];
  c.mss = kMss[(c2 >> 2) & 3];
  c.seed = (c2 >> 4) + 1;
  {
    session s(c);
    for (std::size_t i = 0; i < kMaxOps && !in.done(); ++i)
      s.op(in);
    s.finish();
  }
  check(g->pool.stats().pages_in_use == 0);
  check(g->data_pool.stats().pages_in_use == 0);
  // Sessions the server cached (never offered back) go, so an input frees what it allocated.
  SSL_CTX_flush_sessions(g->server->native(), 0);
  ERR_clear_error();
  return 0;
}
