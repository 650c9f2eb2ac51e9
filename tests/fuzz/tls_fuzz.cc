// libFuzzer target for the TLS engine (filters/tls_engine.h): a pagewire engine over its memory
// BIO against a real OpenSSL peer over memory BIOs, driven by a script decoded from the input.
// Either role: a pagewire server against an OpenSSL client, or a pagewire client against an
// OpenSSL server (whose session tickets, written as its handshake ends, are left in flight to
// the engine like any later ciphertext). The peer's ciphertext reaches the engine cut at
// data-chosen points (chains of slices, net::received blocks, a byte at a time with a call
// after each), sometimes tampered with; the engine's output reaches the peer in data-chosen
// portions; a pool squeezed to a few free pages makes the engine answer want_write. Each
// direction carries a counter-derived byte stream, so order and content are checked byte by
// byte.
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh tls` with clang++-14; its seeds (corpus/tls/) run
// in every `make test` as //tests/fuzz:tls_corpus_test.
//
// Invariants (each aborts through check()), the same in both roles unless a role is named:
//  - the handshake completes (any cuts); version, cipher and who seals are the configured ones;
//    pagewire's sealer starts after the application-key records OpenSSL wrote for the engine:
//    server role, the server's session tickets (start_sequence == tickets); client role, none
//    (start_sequence == 0: the client's Finished is under the handshake key);
//  - every plaintext byte decrypt() delivers is the next byte the peer wrote, and every byte
//    the peer reads is the next byte encrypt()/encrypt_record() accepted, tampering or not;
//  - decrypt(): ok only with exactly `limit` bytes; want_read only with no ciphertext left
//    (buffered_input() == 0) and never after feed_eof() or closed; want_write only when the
//    pool refused a page in that call; closed only after the peer's close_notify and all before
//    it, and closed again on every later call; error only once tampered bytes or the end of
//    the stream reached the engine, as tls_protocol or truncated (truncated when untampered);
//  - feed_eof(): closed when the peer's close_notify was fed whole, otherwise (untampered)
//    error truncated;
//  - encrypt(): never an error, never ok without taking a byte, no want_write once the pool
//    has pages again; encrypt_record() (all or nothing) likewise;
//  - each record sent after the handshake is TLS 1.2/1.3 framed (TLS 1.3: all
//    application_data-typed) and carries at most the plaintext set by set_record_plaintext()
//    (record_plaintext() fills whole packets of the given size), record_overhead() included;
//  - after a decrypt() error the peer reads an alert (OpenSSL's, resealed by pagewire under
//    the right key and sequence), or nothing, never a record that fails to open;
//  - at the end, once everything was moved: each side read all the other wrote (and the
//    close_notify when sent); the sealer counted every KeyUpdate request the peer sent and
//    no stray OpenSSL write (openssl_writes_after_takeover == 0); client role: the engine's
//    session holds a ticket only if the OpenSSL server sent some (TLS 1.3), and does when the
//    engine read its stream untampered and without error; no page is left referenced when
//    the pools go (page_pool aborts).
//
// Input: byte 0 is the configuration (bits 0-1 the suite: AES-128-GCM, AES-256-GCM,
// ChaCha20-Poly1305, AES-128-GCM; bit 2 the client's highest version is TLS 1.2; bit 3 the
// record sealer off; bits 4-5 records_per_key 0, 2, 3, 5; bits 6-7 session tickets 0-3, sent by
// the server, pagewire's or OpenSSL's); byte 1 seeds the cut points, its bits 4-6 feed the
// handshake's ciphertext as op 1's mode, bit 7 is the role (clear: pagewire is the server,
// set: the client); then up to kMaxOps operations, an opcode byte (modulo kOps) and its
// arguments (u16 little endian; the script reads zeros once it is used up):
//   0 n:u16 the peer writes n % 24577 bytes | 1 mode:u8 n:u16 n bytes (0: all) of the peer's
//   ciphertext reach the engine (mode bits 0-1: one chain of many slices, chains, a byte at a
//   time, net::received blocks; bit 2: decrypt() after each piece) | 2 l:u8 decrypt() with
//   limit kLimits[l % 8] | 3 n:u16 encrypt() n % 49153 bytes | 4 k:u8 n:u16 encrypt_record() of
//   n % (record size + 1) bytes in k % 6 + 1 pieces (0 bytes: no record, or OpenSSL would
//   refuse the 33rd in a row) | 5 n:u16 n bytes (0: all) of the output reach the peer, which reads
//   | 6 r:u8 peer KeyUpdate, update_requested if r & 1 | 7 peer close_notify | 8 at:u16 m:u8 flip a
//   byte in flight | 9 at:u16 k:u8 bytes[k % 16 + 1] inserted in flight | 10 r:u8 feed_eof() (after
//   the rest in flight if r & 1) | 11 k:u8 the pool keeps k % 9 free pages | 12 the pool gets them
//   back | 13 close() | 14 mss:u16 set_record_plaintext(record_plaintext(mss)).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/filters/tls_engine.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/recv_buffer_ring.h>

#include "fuzz_check.h"
#include "fuzz_script.h"
#include "fuzz_tls.h"

namespace filters = pagewire::filters;
namespace fs = pagewire::fs;
namespace net = pagewire::net;
using filters::tls_engine;
using status = tls_engine::status;
using fuzz_script::pattern;
using fuzz_script::script;

namespace {

constexpr std::size_t kMaxOps = 128;
constexpr int kOps = 15;
// Plaintext in both directions together: a few dozen records, so one input takes milliseconds.
constexpr std::uint64_t kMaxPlain = 256 * 1024;
constexpr std::size_t kUnlimited = std::size_t{1} << 30;
constexpr std::size_t kOneByteFeeds = 2048;  // byte-at-a-time feeding stops after this
constexpr std::uint32_t kPeerSalt = 0x5a, kEngineSalt = 0xa5;
// decrypt() limits: a byte, less than a record, page boundaries, a record, no limit.
constexpr std::size_t kLimits[8] = {1, 7, 100, 4095, 4096, 5000, 16384, kUnlimited};

struct suite {
  const char* tls13;
  const char* tls12;  // the TLS 1.2 cipher of the same AEAD (ECDSA suites take Ed25519 keys)
};
constexpr suite kSuites[4] = {
    {"TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
};
constexpr std::uint64_t kRecordsPerKey[4] = {0, 2, 3, 5};

std::vector<std::byte> stream_bytes(std::uint64_t from, std::size_t n, std::uint32_t salt) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = pattern(from + i, salt);
  return v;
}

// Cut points (xorshift: the same input, the same cuts).
struct picker {
  std::uint64_t s;
  std::uint64_t next() noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::size_t below(std::size_t n) noexcept { return n ? next() % n : 0; }
};

// Contexts for every configuration, built once: building one per input would cost more than
// the input itself. Server role: pagewire servers and OpenSSL clients; client role: pagewire
// clients and one OpenSSL server (tickets are set per connection, the client picks suite and
// version). No client offers a session back, the pagewire server's session cache is emptied
// after each input and the OpenSSL server keeps none, so no input sees another's traces.
struct contexts {
  using engine_context = std::shared_ptr<filters::tls_context>;
  engine_context engine_server[3][2][4][4];  // suite, sealer off, rpk, tickets
  SSL_CTX* peer_client[3][2] = {};           // suite, TLS 1.2
  engine_context engine_client[3][2][2][4];  // suite, TLS 1.2, sealer off, rpk
  SSL_CTX* peer_server = nullptr;
};
contexts* g_contexts = nullptr;

void build_contexts() {
  char dir[] = "/tmp/pagewire-tls-fuzz-XXXXXX";
  check(::mkdtemp(dir) != nullptr);
  const std::string cert = std::string(dir) + "/cert.pem", key = std::string(dir) + "/key.pem";
  fuzz_tls::write_certificate(cert, key, false);
  auto* c = new contexts;
  for (int s = 0; s < 3; ++s) {
    for (int off = 0; off < 2; ++off) {
      for (int r = 0; r < 4; ++r) {
        filters::tls_options o;  // what both roles share
        o.ciphersuites = kSuites[s].tls13;
        o.record_sealer = off == 0;
        o.records_per_key = kRecordsPerKey[r];
        for (int v12 = 0; v12 < 2; ++v12) {
          filters::tls_options client = o;
          client.role = filters::tls_role::client;
          client.cipher_list = kSuites[s].tls12;
          client.max_version = v12 ? 12 : 13;
          c->engine_client[s][v12][off][r] = fuzz_tls::make_context(client);
        }
        o.role = filters::tls_role::server;
        o.cert_file = cert;
        o.key_file = key;
        for (unsigned t = 0; t < 4; ++t) {
          o.session_tickets = t;
          c->engine_server[s][off][r][t] = fuzz_tls::make_context(o);
        }
      }
    }
    for (int v12 = 0; v12 < 2; ++v12) {
      SSL_CTX* x = SSL_CTX_new(TLS_client_method());
      check(x != nullptr);
      SSL_CTX_set_max_proto_version(x, v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
      check(SSL_CTX_set_ciphersuites(x, kSuites[s].tls13) == 1);
      check(SSL_CTX_set_cipher_list(x, kSuites[s].tls12) == 1);
      c->peer_client[s][v12] = x;
    }
  }
  SSL_CTX* x = SSL_CTX_new(TLS_server_method());
  check(x != nullptr);
  check(SSL_CTX_use_certificate_chain_file(x, cert.c_str()) == 1);
  check(SSL_CTX_use_PrivateKey_file(x, key.c_str(), SSL_FILETYPE_PEM) == 1);
  SSL_CTX_set_session_cache_mode(x, SSL_SESS_CACHE_OFF);
  c->peer_server = x;
  // The contexts hold the key and certificate now; nothing is left behind in /tmp.
  ::unlink(cert.c_str());
  ::unlink(key.c_str());
  ::rmdir(dir);
  g_contexts = c;
}

struct config {
  int suite = 0;
  bool tls12 = false;
  bool sealer = true;
  int rpk = 0;
  unsigned tickets = 0;
  bool client = false;  // the role: pagewire is the client, OpenSSL the server
};

// One connection: the engine under test, its OpenSSL peer, and what each side sent and got.
class session {
 public:
  session(const config& c, std::uint8_t seed)
      : cfg_(c), pick_{0x9e3779b97f4a7c15ull * (seed + 1u)} {
    const int suite = c.suite % 3, off = c.sealer ? 0 : 1, v12 = c.tls12 ? 1 : 0;
    const contexts& g = *g_contexts;
    std::error_code ec;
    engine_ = std::make_unique<tls_engine>(c.client ? g.engine_client[suite][v12][off][c.rpk]
                                                    : g.engine_server[suite][off][c.rpk][c.tickets],
                                           pool_, ec);
    check(!ec);
    peer_ = SSL_new(c.client ? g.peer_server : g.peer_client[suite][v12]);
    peer_in_ = BIO_new(BIO_s_mem());
    peer_out_ = BIO_new(BIO_s_mem());
    check(peer_ && peer_in_ && peer_out_);
    SSL_set_bio(peer_, peer_in_, peer_out_);
    if (c.client) {
      check(SSL_set_num_tickets(peer_, c.tickets) == 1);
      SSL_set_accept_state(peer_);
    } else {
      SSL_set_connect_state(peer_);
    }
  }
  // The engine and the peer go first (declared after the pools, the engine is destroyed
  // before them too): a page still referenced when a pool goes aborts the run.
  ~session() {
    SSL_free(peer_);
    engine_.reset();
    ballast_.clear();
  }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  void handshake(std::uint8_t mode) {
    bool engine_done = false, peer_done = false;
    auto step = [&] {
      std::error_code ec;
      const status st = engine_->handshake(ec);
      if (st == status::error) {
        std::fprintf(stderr, "engine handshake: %s %s\n", ec.message().c_str(),
                     filters::openssl_errors().c_str());
      }
      check(st == status::ok || st == status::want_read);
      engine_done = st == status::ok;
      return true;
    };
    for (int round = 0; round < 8 && !(engine_done && peer_done); ++round) {
      step();
      move_output_raw();
      if (!peer_done) {
        const int r = SSL_do_handshake(peer_);
        peer_done = r == 1;
        if (!peer_done) check(SSL_get_error(peer_, r) == SSL_ERROR_WANT_READ);
      }
      // Until the engine is done; what the peer writes after that (an OpenSSL server's
      // tickets) stays in flight for the script.
      if (!engine_done) deliver(0, mode, step);
    }
    check(engine_done && peer_done && engine_->established());
    const bool v13 = !cfg_.tls12;
    check(engine_->version() == (v13 ? "TLSv1.3" : "TLSv1.2"));
    check(engine_->cipher() == (v13 ? kSuites[cfg_.suite].tls13 : kSuites[cfg_.suite].tls12));
    const filters::sealer_stats& st = engine_->sealer();
    check(st.active == (v13 && cfg_.sealer));
    check(engine_->seals_in_place() == st.active);
    // OpenSSL's records under the engine's application key before the takeover: a pagewire
    // server's tickets; none from a pagewire client.
    if (st.active) check(st.start_sequence == (cfg_.client ? 0 : cfg_.tickets));
    // Records from here on are parsed as they leave the engine.
    parse_from_ = to_peer_.size();
  }

  // One operation of the script; false ends the script.
  bool op(script& in) {
    switch (in.u8() % kOps) {
      case 0:  // the peer writes N bytes
        peer_write(in.u16() % 24577);
        return true;
      case 1: {  // up to N bytes of the peer's ciphertext reach the engine (0: all)
        const std::uint8_t mode = in.u8();
        const std::size_t n = in.u16();
        return deliver(n, mode, [this] { return read(kUnlimited) != status::error; });
      }
      case 2:  // the engine decrypts, at most `limit` bytes
        return read(kLimits[in.u8() % 8]) != status::error;
      case 3:  // the engine encrypts N bytes (encrypt(): records of the set size)
        engine_write(in.u16() % 49153);
        return true;
      case 4: {  // the engine seals one record from pieces (encrypt_record())
        const std::uint8_t pieces = in.u8();
        engine_write_record(in.u16(), pieces);
        return true;
      }
      case 5:  // up to N bytes of the engine's output reach the peer (0: all), which reads
        peer_read(in.u16());
        return true;
      case 6:  // the peer sends a KeyUpdate, asking for one back or not
        peer_key_update(in.u8() & 1);
        return true;
      case 7:  // the peer's close_notify
        peer_shutdown();
        return true;
      case 8: {  // a byte of the ciphertext in flight to the engine changes
        const std::size_t at = in.u16();
        corrupt(at, in.u8());
        return true;
      }
      case 9: {  // bytes of the script are inserted into that ciphertext
        const std::size_t at = in.u16();
        std::vector<std::uint8_t> v(1 + in.u8() % 16);
        for (auto& b : v)
          b = in.u8();
        inject(at, v);
        return true;
      }
      case 10:  // the stream ends (after the rest of the ciphertext or not)
        return end_of_stream(in.u8() & 1);
      case 11:  // the pool keeps k free pages
        squeeze(in.u8() % 9);
        return true;
      case 12:  // and has its pages back
        ballast_.clear();
        return true;
      case 13:  // the engine's close_notify
        engine_close();
        return true;
      default:  // record size for a data-chosen packet size
        set_record_size(in.u16());
        return true;
    }
  }

  // Everything still in flight moves; each side must have read all the other wrote.
  void finish() {
    ballast_.clear();
    if (!failed_ && !eof_) {
      deliver(0, 0, [] { return true; });
      const status st = read(kUnlimited);
      if (!tampered()) {
        check(engine_got_ == peer_written_);
        check(st == (peer_closed_ ? status::closed : status::want_read));
      }
    }
    peer_read(0);
    if (!failed_) {
      check(peer_got_ == engine_sent_);
      check(peer_saw_close_ == engine_closed_);
    }
    const filters::sealer_stats& st = engine_->sealer();
    check(st.openssl_writes_after_takeover == 0);
    if (st.active && !failed_ && !eof_ && !tampered()) {
      check(st.peer_key_update_requests == update_requests_);
    }
    // A pagewire client's session holds a ticket only if the OpenSSL server sent some (TLS 1.3),
    // and does once decrypt() read the stream untampered up to its end or close_notify.
    if (cfg_.client) {
      const bool ticket = SSL_SESSION_has_ticket(SSL_get_session(engine_->native())) == 1;
      const unsigned sent = cfg_.tls12 ? 0 : cfg_.tickets;
      check(!ticket || sent > 0);
      if (!failed_ && !tampered()) check(ticket == (sent > 0));
    }
  }

 private:
  std::uint64_t budget() const noexcept {
    const std::uint64_t used = peer_written_ + engine_sent_;
    return used < kMaxPlain ? kMaxPlain - used : 0;
  }
  // Pages the engine's pool refused so far. A want_write must follow a refusal in the same
  // call; the pool need not stay empty after it (a page_writer lets go of its full page when
  // it asks for the next one).
  std::uint64_t refused_pages() const { return pool_.stats().allocation_failures; }
  // Tampered bytes reached the engine.
  bool tampered() const noexcept { return taint_ < fed_; }

  // The peer's ciphertext joins what is in flight to the engine.
  void pull_peer() {
    char buf[16384];
    for (int n; (n = BIO_read(peer_out_, buf, sizeof buf)) > 0;) {
      const auto* b = reinterpret_cast<const std::byte*>(buf);
      wire_.insert(wire_.end(), b, b + n);
    }
  }

  // `bytes` as one chain: slices of at most a page, separated by one unused byte so that
  // neighbours never merge, cut further at picked points.
  fs::chain chain_of(std::span<const std::byte> bytes, std::size_t cuts) {
    fs::chain c;
    fs::page_ref page;
    std::size_t used = fs::kPageSize;
    while (!bytes.empty()) {
      std::size_t n = bytes.size();
      if (cuts > 0) n = 1 + pick_.below(n);
      if (used + 1 >= fs::kPageSize) {
        page = wire_pool_.allocate();
        check(static_cast<bool>(page));
        used = pick_.below(64);
      }
      n = std::min(n, fs::kPageSize - used);
      std::memcpy(page.data() + used, bytes.data(), n);
      c.append(fs::slice(page, used, n));
      used += n + 1;
      bytes = bytes.subspan(n);
      if (cuts > 0) --cuts;
    }
    return c;
  }

  // Feeds one piece as a chain (of `cuts` + 1 slices or more) or as a received block. A block
  // is read after every fed chain (tls_engine.h), so a chain goes in only while no block is
  // unread: the stream stays in order.
  void feed_piece(std::span<const std::byte> piece, bool raw, std::size_t cuts) {
    if (piece.empty()) return;
    const std::uint64_t before = engine_->buffered_input();
    if (before == 0) raw_unread_ = false;
    if (raw || raw_unread_) {
      auto block = std::make_unique<std::byte[]>(piece.size());
      std::memcpy(block.get(), piece.data(), piece.size());
      engine_->feed(net::received::from_heap(std::move(block), piece.size()));
      raw_unread_ = true;
    } else {
      engine_->feed(chain_of(piece, cuts));
    }
    check(engine_->buffered_input() == before + piece.size());
    fed_ += piece.size();
  }

  // Up to n bytes (0: all) of what is in flight reach the engine. mode bits 0-1: one chain of
  // several slices, pieces as chains, a byte at a time, pieces as received blocks; bit 2 (and
  // byte at a time): `step` after each piece, which returns false to stop.
  template <class Step>
  bool deliver(std::size_t n, std::uint8_t mode, Step step) {
    pull_peer();
    if (eof_) return true;  // nothing reaches the engine after the end of its stream
    n = n == 0 ? wire_.size() : std::min(n, wire_.size());
    const std::span<const std::byte> all(wire_.data(), n);
    const int how = mode & 3;
    const bool each = (mode & 4) || how == 2;
    std::size_t off = 0;
    bool go = true;
    while (off < n && go) {
      std::size_t k = n - off;
      if (how == 1 || how == 3) k = 1 + pick_.below(std::min<std::size_t>(k, 6000));
      if (how == 2 && off < kOneByteFeeds) k = 1;
      feed_piece(all.subspan(off, k), how == 3, how == 0 ? 1 + pick_.below(12) : pick_.below(3));
      off += k;
      if (each) go = step();
    }
    wire_.erase(wire_.begin(), wire_.begin() + static_cast<std::ptrdiff_t>(off));
    return go;
  }

  // Plaintext the engine produced: the next bytes of the peer's stream.
  void check_from_peer(const fs::chain& c) {
    for (const fs::segment& s : c.segments()) {
      for (const std::byte b : std::get<fs::slice>(s).bytes()) {
        check(engine_got_ < peer_written_);
        check(b == pattern(engine_got_, kPeerSalt));
        ++engine_got_;
      }
    }
  }

  // decrypt() with `limit`, a want_write answered by moving the output and giving the pool its
  // pages back; returns the final status. Checks what it delivered and what it may answer.
  status read(std::size_t limit) {
    if (failed_) return status::error;
    for (int tries = 0;; ++tries) {
      filters::page_writer w(pool_);
      std::error_code ec;
      const std::uint64_t refusals = refused_pages();
      const status st = engine_->decrypt(w, limit, ec);
      const fs::chain got = w.take();
      check(got.size() <= limit);
      check_from_peer(got);
      switch (st) {
        case status::ok:
          check(got.size() == limit);
          check(!closed_);
          return st;
        case status::want_read:
          check(engine_->buffered_input() == 0);
          check(!closed_ && !eof_);
          return st;
        case status::want_write:
          check(refused_pages() > refusals);
          check(tries < 2);  // with its pages back the engine goes on
          limit -= got.size();
          relieve();
          continue;
        case status::closed:
          check(peer_closed_);
          check(engine_got_ == peer_written_);
          closed_ = true;
          return st;
        case status::error:
          if (!tampered() || !(ec == filters::errc::tls_protocol)) {
            if (!(eof_ && ec == filters::errc::truncated)) {
              std::fprintf(stderr, "decrypt error %s (tampered %d eof %d)\n", ec.message().c_str(),
                           tampered(), eof_);
            }
            check(eof_ && ec == filters::errc::truncated);
          }
          failed_ = true;
          return st;
      }
      check(false);
    }
  }

  // The engine's output, from its pages into the peer-bound buffer; records are checked
  // against the record size in effect while they were sealed.
  void take_output() {
    const fs::chain c = engine_->output().take();
    for (const fs::segment& s : c.segments()) {
      const auto b = std::get<fs::slice>(s).bytes();
      to_peer_.insert(to_peer_.end(), b.begin(), b.end());
    }
    parse_records();
  }

  void parse_records() {
    if (parse_from_ == SIZE_MAX) return;  // still in the handshake
    const std::size_t cap = record_bytes_ + engine_->record_overhead() - 5;
    // A header is checked once, when it is whole; parse_from_ then moves past its record,
    // beyond the bytes there are while the record's body is still to come.
    while (parse_from_ + 5 <= to_peer_.size()) {
      const auto* h = reinterpret_cast<const unsigned char*>(to_peer_.data() + parse_from_);
      const std::size_t len = std::size_t{h[3]} << 8 | h[4];
      check(h[1] == 3 && h[2] == 3);
      if (cfg_.tls12) {
        check(h[0] == 0x15 || h[0] == 0x17);
      } else {
        check(h[0] == 0x17);
      }
      if (len > cap) {
        std::fprintf(stderr, "record of %zu bytes, record size %zu overhead %zu\n", len,
                     record_bytes_, engine_->record_overhead());
      }
      check(len <= cap);
      parse_from_ += 5 + len;
    }
    // Bytes the peer has read are dropped (parse_from_ then counts from the new front).
    if (sent_to_peer_ > 0) {
      const std::size_t drop = std::min(sent_to_peer_, parse_from_);
      to_peer_.erase(to_peer_.begin(), to_peer_.begin() + static_cast<std::ptrdiff_t>(drop));
      parse_from_ -= drop;
      sent_to_peer_ -= drop;
    }
  }

  // During the handshake: the output goes to the peer as it is.
  void move_output_raw() {
    const fs::chain c = engine_->output().take();
    for (const fs::segment& s : c.segments()) {
      const auto b = std::get<fs::slice>(s).bytes();
      check(BIO_write(peer_in_, b.data(), static_cast<int>(b.size())) ==
            static_cast<int>(b.size()));
    }
  }

  // Up to n bytes (0: all) of the engine's output reach the peer, which reads what it can.
  void peer_read(std::size_t n) {
    take_output();
    const std::size_t avail = to_peer_.size() - sent_to_peer_;
    n = n == 0 ? avail : std::min(n, avail);
    if (n > 0) {
      check(BIO_write(peer_in_, to_peer_.data() + sent_to_peer_, static_cast<int>(n)) ==
            static_cast<int>(n));
      sent_to_peer_ += n;
    }
    if (peer_stopped_) return;
    char buf[16384];
    for (;;) {
      std::size_t got = 0;
      ERR_clear_error();
      const int r = SSL_read_ex(peer_, buf, sizeof buf, &got);
      if (r == 1) {
        for (std::size_t i = 0; i < got; ++i) {
          check(peer_got_ < engine_sent_);
          check(static_cast<std::byte>(buf[i]) == pattern(peer_got_, kEngineSalt));
          ++peer_got_;
        }
        continue;
      }
      const int err = SSL_get_error(peer_, r);
      if (err == SSL_ERROR_WANT_READ) break;
      if (err == SSL_ERROR_ZERO_RETURN) {
        check(engine_closed_ && peer_got_ == engine_sent_);
        peer_saw_close_ = true;
        peer_stopped_ = true;
        break;
      }
      // After the engine's error: the alert it sent, opened by the peer (reasons from
      // SSL_AD_REASON_OFFSET on are alerts received); a record that fails to open is not.
      const unsigned long e = ERR_peek_error();
      if (!failed_ || err != SSL_ERROR_SSL || ERR_GET_REASON(e) < SSL_AD_REASON_OFFSET) {
        std::fprintf(stderr, "peer SSL_read: error %d, %s (engine failed %d)\n", err,
                     filters::openssl_errors().c_str(), failed_);
        check(false);
      }
      ERR_clear_error();
      peer_stopped_ = true;
      break;
    }
  }

  // Moves the output to the peer and gives the pool its pages back: what a caller does on
  // want_write before offering the same bytes again.
  void relieve() {
    ballast_.clear();
    peer_read(0);
  }

  void peer_write(std::size_t n) {
    if (peer_closed_ || failed_) return;
    n = std::min<std::uint64_t>(n, budget());
    if (n == 0) return;
    const auto v = stream_bytes(peer_written_, n, kPeerSalt);
    std::size_t w = 0;
    check(SSL_write_ex(peer_, v.data(), n, &w) == 1 && w == n);
    peer_written_ += n;
  }

  void engine_write(std::size_t n) {
    if (engine_closed_ || failed_) return;
    n = std::min<std::uint64_t>(n, budget());
    if (n == 0) return;
    const auto v = stream_bytes(engine_sent_, n, kEngineSalt);
    std::size_t done = 0;
    for (int refused = 0; done < n;) {
      std::size_t accepted = 0;
      std::error_code ec;
      const std::uint64_t refusals = refused_pages();
      const status st = engine_->encrypt(std::span(v).subspan(done), accepted, ec);
      if (st == status::error) {
        std::fprintf(stderr, "encrypt error %s %s\n", ec.message().c_str(),
                     filters::openssl_errors().c_str());
      }
      check(st == status::ok || st == status::want_write);
      check(accepted <= n - done);
      done += accepted;
      engine_sent_ += accepted;
      if (st == status::ok) {
        check(accepted > 0);
        continue;
      }
      check(refused_pages() > refusals);
      check(++refused <= 2);
      relieve();
    }
  }

  void engine_write_record(std::size_t n, std::uint8_t pieces) {
    if (engine_closed_ || failed_ || !engine_->seals_in_place()) return;
    n = std::min<std::uint64_t>(n % (record_bytes_ + 1), budget());
    const auto v = stream_bytes(engine_sent_, n, kEngineSalt);
    // The record's plaintext in 1-6 pieces, empty ones included.
    std::vector<std::span<const std::byte>> parts;
    std::size_t off = 0;
    for (int k = pieces % 6; k > 0; --k) {
      const std::size_t len = pick_.below(n - off + 1);
      parts.push_back(std::span(v).subspan(off, len));
      off += len;
    }
    parts.push_back(std::span(v).subspan(off));
    for (int refused = 0;;) {
      std::error_code ec;
      const std::uint64_t refusals = refused_pages();
      const status st = engine_->encrypt_record(parts, ec);
      if (st == status::ok) break;
      check(st == status::want_write);
      check(refused_pages() > refusals);
      check(++refused <= 2);
      relieve();
    }
    engine_sent_ += n;
  }

  void peer_key_update(bool requested) {
    if (cfg_.tls12 || peer_closed_ || failed_) return;
    check(SSL_key_update(peer_,
                         requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) == 1);
    check(SSL_do_handshake(peer_) == 1);  // sends it now
    if (requested) ++update_requests_;
  }

  void peer_shutdown() {
    if (peer_closed_ || failed_) return;
    check(SSL_shutdown(peer_) >= 0);
    peer_closed_ = true;
    pull_peer();
    close_end_ = fed_ + wire_.size();
  }

  void corrupt(std::size_t at, std::uint8_t mask) {
    pull_peer();
    if (wire_.empty()) return;
    at %= wire_.size();
    wire_[at] ^= static_cast<std::byte>(mask ? mask : 0x80);
    taint_ = std::min<std::uint64_t>(taint_, fed_ + at);
  }

  void inject(std::size_t at, const std::vector<std::uint8_t>& v) {
    pull_peer();
    at %= wire_.size() + 1;
    const auto* b = reinterpret_cast<const std::byte*>(v.data());
    wire_.insert(wire_.begin() + static_cast<std::ptrdiff_t>(at), b, b + v.size());
    taint_ = std::min<std::uint64_t>(taint_, fed_ + at);
    if (peer_closed_ && fed_ + at < close_end_) close_end_ += v.size();
  }

  bool end_of_stream(bool deliver_rest) {
    if (failed_ || eof_) return !failed_;
    if (deliver_rest) deliver(0, 0, [] { return true; });
    const bool close_notify_fed = peer_closed_ && fed_ >= close_end_;
    engine_->feed_eof();
    eof_ = true;
    const status st = read(kUnlimited);
    if (tampered()) {
      check(st == status::closed || st == status::error);
    } else {
      check(st == (close_notify_fed ? status::closed : status::error));
      if (st == status::error) check(!closed_);
    }
    return st != status::error;
  }

  void squeeze(std::size_t keep) {
    while (fs::page_ref p = pool_.allocate())
      ballast_.push_back(std::move(p));
    ballast_.resize(ballast_.size() - std::min(keep, ballast_.size()));
  }

  void engine_close() {
    if (engine_closed_ || failed_) return;
    for (int refused = 0;;) {
      std::error_code ec;
      const std::uint64_t refusals = refused_pages();
      const status st = engine_->close(ec);
      if (st == status::ok) break;
      // The sealer reports a refused page as pool_exhausted, OpenSSL as want_write.
      check(st == status::want_write ||
            (st == status::error && ec == filters::errc::pool_exhausted));
      check(refused_pages() > refusals);
      check(++refused <= 2);
      relieve();
    }
    engine_closed_ = true;
  }

  void set_record_size(std::size_t mss) {
    if (failed_) return;
    const std::size_t bytes = engine_->record_plaintext(mss);
    const std::size_t overhead = engine_->record_overhead();
    check(bytes >= 512 && bytes <= 16384);
    // Whole packets: the record and its overhead fill a multiple of mss (unless clamped).
    if (mss != 0 && bytes > 512 && bytes < 16384) check((bytes + overhead) % mss == 0);
    take_output();  // records sealed so far are held to the size they were sealed under
    engine_->set_record_plaintext(bytes);
    record_bytes_ = bytes;
  }

  const config cfg_;
  picker pick_;
  // The pools outlive everything below them. The engine's pool is one arena (512 pages), so
  // squeeze() can leave it a few; what the harness feeds comes from the other.
  fs::page_pool wire_pool_{
      fs::page_pool_options{.max_bytes = std::size_t{64} << 20, .try_huge_pages = false}};
  fs::page_pool pool_{
      fs::page_pool_options{.max_bytes = std::size_t{2} << 20, .try_huge_pages = false}};
  std::vector<fs::page_ref> ballast_;  // pages squeeze() keeps from the engine
  std::unique_ptr<tls_engine> engine_;
  SSL* peer_ = nullptr;
  BIO* peer_in_ = nullptr;   // what the peer reads (owned by peer_)
  BIO* peer_out_ = nullptr;  // what the peer writes (owned by peer_)

  std::vector<std::byte> wire_;           // peer ciphertext not yet fed
  std::uint64_t fed_ = 0;                 // bytes fed to the engine
  std::uint64_t taint_ = UINT64_MAX;      // position in the engine's input of the first tampering
  bool raw_unread_ = false;               // a received block may still be unread
  std::uint64_t close_end_ = UINT64_MAX;  // where the peer's close_notify ends in that input

  std::vector<std::byte> to_peer_;     // engine output not yet dropped
  std::size_t sent_to_peer_ = 0;       // of which the peer has these
  std::size_t parse_from_ = SIZE_MAX;  // the next record header in to_peer_
  std::size_t record_bytes_ = 16384;   // plaintext per record in effect

  std::uint64_t peer_written_ = 0, engine_got_ = 0;  // peer -> engine stream
  std::uint64_t engine_sent_ = 0, peer_got_ = 0;     // engine -> peer stream
  std::uint64_t update_requests_ = 0;  // KeyUpdates with update_requested the peer sent
  bool peer_closed_ = false;           // the peer sent close_notify
  bool engine_closed_ = false;         // close() queued the engine's close_notify
  bool closed_ = false;                // decrypt() reported closed
  bool peer_saw_close_ = false;        // the peer read the engine's close_notify
  bool peer_stopped_ = false;          // the peer read close_notify or an alert
  bool eof_ = false;                   // feed_eof() was called
  bool failed_ = false;                // decrypt() reported an error: the script ends
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  build_contexts();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  ERR_clear_error();
  script in{data, size};
  const std::uint8_t c0 = in.u8(), c1 = in.u8();
  config c;
  c.suite = c0 & 3;
  c.tls12 = c0 & 4;
  c.sealer = !(c0 & 8);
  c.rpk = (c0 >> 4) & 3;
  c.tickets = c0 >> 6;
  c.client = c1 & 0x80;
  {
    session s(c, c1);
    s.handshake(static_cast<std::uint8_t>((c1 >> 4) & 7));
    for (std::size_t i = 0; i < kMaxOps && !in.done(); ++i) {
      if (!s.op(in)) break;
    }
    s.finish();
  }
  // The session the pagewire server cached (never offered back) goes, so memory the input
  // allocated is freed by its end and libFuzzer keeps checking each input for leaks.
  if (!c.client) {
    SSL_CTX_flush_sessions(
        g_contexts->engine_server[c.suite % 3][c.sealer ? 0 : 1][c.rpk][c.tickets]->native(), 0);
  }
  ERR_clear_error();
  return 0;
}
