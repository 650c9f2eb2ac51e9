// pagewire's own TLS 1.3 record sealer against a real OpenSSL peer (an SSL over memory
// BIOs): byte-exact bodies of every size class for each suite and both roles, a server's
// session tickets before the takeover (start sequence != 0), the peer's KeyUpdate with
// update_requested mid-stream, own key updates, TLS 1.2 left to OpenSSL, a keylog callback
// installed earlier still called, close_notify, and no copy on the sending side. Plus the
// sealer alone: records spanning pages open again, key updates on both ends agree.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <pagewire/filters/tls13_record_sealer.h>
#include <pagewire/filters/tls_engine.h>
#include <pagewire/fs/stats.h>

#include "tests/filters/helpers.h"

namespace pwtest {
namespace {

using filters::tls_engine;
using sealer = filters::tls13_record_sealer;

struct suite {
  const char* name;
  std::uint16_t id;
};
const suite kSuites[] = {{"TLS_AES_128_GCM_SHA256", 0x1301},
                         {"TLS_AES_256_GCM_SHA384", 0x1302},
                         {"TLS_CHACHA20_POLY1305_SHA256", 0x1303}};

// A pagewire engine and an OpenSSL peer, joined by memory: engine output goes into the
// peer's read BIO, the peer's write BIO is fed to the engine.
struct peer_pair {
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{256} << 20}};
  std::shared_ptr<filters::tls_context> ctx;
  std::unique_ptr<tls_engine> pw;
  SSL_CTX* peer_ctx = nullptr;
  SSL* peer = nullptr;
  BIO* peer_in = nullptr;   // what the peer reads
  BIO* peer_out = nullptr;  // what the peer writes

  struct config {
    bool pw_server = true;
    const char* suite = "TLS_AES_128_GCM_SHA256";
    int peer_max_version = TLS1_3_VERSION;
    unsigned tickets = 0;  // session tickets the pagewire server sends
    std::uint64_t records_per_key = 0;
    bool record_sealer = true;
    void (*keylog)(const SSL*, const char*) = nullptr;  // installed before the engine
    std::uint8_t peer_max_fragment = 0;  // the client peer asks for max_fragment_length
  };

  explicit peer_pair(const config& c) {
    filters::tls_options o;
    o.role = c.pw_server ? filters::tls_role::server : filters::tls_role::client;
    if (c.pw_server) {
      o.cert_file = self_signed().cert;
      o.key_file = self_signed().key;
    }
    o.ciphersuites = c.suite;
    o.records_per_key = c.records_per_key;
    o.record_sealer = c.record_sealer;
    o.session_tickets = c.tickets;
    std::error_code ec;
    ctx = filters::tls_context::create(o, ec);
    EXPECT_FALSE(ec) << ec.message();
    if (c.keylog) SSL_CTX_set_keylog_callback(ctx->native(), c.keylog);
    pw = std::make_unique<tls_engine>(ctx, pool, ec);
    EXPECT_FALSE(ec) << ec.message();

    peer_ctx = SSL_CTX_new(c.pw_server ? TLS_client_method() : TLS_server_method());
    SSL_CTX_set_max_proto_version(peer_ctx, c.peer_max_version);
    if (c.peer_max_fragment) {
      EXPECT_EQ(SSL_CTX_set_tlsext_max_fragment_length(peer_ctx, c.peer_max_fragment), 1);
    }
    SSL_CTX_set_ciphersuites(peer_ctx, c.suite);
    if (!c.pw_server) {
      EXPECT_EQ(SSL_CTX_use_certificate_chain_file(peer_ctx, self_signed().cert.c_str()), 1);
      EXPECT_EQ(SSL_CTX_use_PrivateKey_file(peer_ctx, self_signed().key.c_str(), SSL_FILETYPE_PEM),
                1);
      SSL_CTX_set_num_tickets(peer_ctx, 0);
    }
    peer = SSL_new(peer_ctx);
    peer_in = BIO_new(BIO_s_mem());
    peer_out = BIO_new(BIO_s_mem());
    SSL_set_bio(peer, peer_in, peer_out);
    if (c.pw_server) {
      SSL_set_connect_state(peer);
    } else {
      SSL_set_accept_state(peer);
    }
  }
  ~peer_pair() {
    pw.reset();
    SSL_free(peer);
    SSL_CTX_free(peer_ctx);
  }

  void to_peer() {
    const fs::chain c = pw->output().take();
    for (const fs::segment& s : c.segments()) {
      const auto b = std::get<fs::slice>(s).bytes();
      ASSERT_EQ(BIO_write(peer_in, b.data(), static_cast<int>(b.size())),
                static_cast<int>(b.size()));
    }
  }
  void from_peer() {
    std::vector<std::byte> v;
    char buf[16384];
    for (int n; (n = BIO_read(peer_out, buf, sizeof buf)) > 0;) {
      const auto* p = reinterpret_cast<const std::byte*>(buf);
      v.insert(v.end(), p, p + n);
    }
    if (!v.empty()) pw->feed(to_chain(pool, v));
  }

  bool handshake() {
    bool pw_done = false, peer_done = false;
    for (int i = 0; i < 20 && !(pw_done && peer_done); ++i) {
      std::error_code ec;
      const auto st = pw->handshake(ec);
      if (st == tls_engine::status::error) return false;
      pw_done = st == tls_engine::status::ok;
      to_peer();
      const int r = SSL_do_handshake(peer);
      peer_done = r == 1;
      if (r != 1 && SSL_get_error(peer, r) != SSL_ERROR_WANT_READ) return false;
      from_peer();
    }
    pw->set_record_plaintext(pw->record_plaintext(0));
    return pw_done && peer_done;
  }

  // Encrypts everything; true if every byte was accepted.
  bool send(std::span<const std::byte> data) {
    std::size_t off = 0;
    while (off < data.size()) {
      std::size_t n = 0;
      std::error_code ec;
      if (pw->encrypt(data.subspan(off), n, ec) != tls_engine::status::ok || n == 0) return false;
      off += n;
    }
    to_peer();
    return true;
  }

  // Everything the peer can read now; `closed` when it read close_notify.
  std::vector<std::byte> peer_read(bool* closed = nullptr) {
    std::vector<std::byte> v;
    char buf[16384];
    for (;;) {
      std::size_t n = 0;
      const int r = SSL_read_ex(peer, buf, sizeof buf, &n);
      if (r == 1) {
        const auto* p = reinterpret_cast<const std::byte*>(buf);
        v.insert(v.end(), p, p + n);
        continue;
      }
      const int err = SSL_get_error(peer, r);
      if (closed) *closed = err == SSL_ERROR_ZERO_RETURN;
      EXPECT_TRUE(err == SSL_ERROR_WANT_READ || err == SSL_ERROR_ZERO_RETURN)
          << "peer SSL_read error " << err << " " << filters::openssl_errors();
      from_peer();  // whatever the peer wrote while reading (tickets' answers: none)
      return v;
    }
  }

  // Plaintext the engine decrypts from what the peer sent.
  std::vector<std::byte> pw_read() {
    from_peer();
    filters::page_writer out(pool);
    std::error_code ec;
    const auto st = pw->decrypt(out, std::size_t{1} << 30, ec);
    EXPECT_TRUE(st == tls_engine::status::want_read) << ec.message();
    return to_bytes(out.take());
  }
};

class SealerSizes : public ::testing::TestWithParam<std::tuple<int, bool>> {};

TEST_P(SealerSizes, EverySizeReachesTheOpenSslPeerByteExactThenCloseNotify) {
  const suite& s = kSuites[std::get<0>(GetParam())];
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{16383}, std::size_t{16384},
                        std::size_t{16385}, std::size_t{(1u << 20) + 3}}) {
    peer_pair p({.pw_server = std::get<1>(GetParam()), .suite = s.name});
    ASSERT_TRUE(p.handshake());
    EXPECT_EQ(p.pw->cipher(), s.name);
    const auto& st = p.pw->sealer();
    EXPECT_TRUE(st.active) << st.reason;
    EXPECT_EQ(st.start_sequence, 0u);
    const auto data = random_bytes(n, n + 1);
    const std::uint64_t copies = fs::stats::copied_bytes();
    ASSERT_TRUE(p.send(data));
    EXPECT_EQ(fs::stats::copied_bytes(), copies) << "the sealer encrypts in place, no copy";
    EXPECT_TRUE(p.peer_read() == data) << n << " bytes";
    std::error_code ec;
    ASSERT_EQ(p.pw->close(ec), tls_engine::status::ok) << ec.message();
    p.to_peer();
    bool closed = false;
    EXPECT_TRUE(p.peer_read(&closed).empty());
    EXPECT_TRUE(closed) << "SSL_read ends with SSL_ERROR_ZERO_RETURN";
    EXPECT_EQ(st.openssl_writes_after_takeover, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Suites, SealerSizes,
                         ::testing::Combine(::testing::Values(0, 1, 2), ::testing::Bool()),
                         [](const auto& info) {
                           std::string n = kSuites[std::get<0>(info.param)].name;
                           return n.substr(4, n.find('_', 8) - 4) +
                                  (std::get<1>(info.param) ? "_server" : "_client");
                         });

TEST(Sealer, ServerSendsAfterSessionTicketsFromTheRightSequence) {
  peer_pair p({.pw_server = true, .tickets = 2});
  ASSERT_TRUE(p.handshake());
  EXPECT_TRUE(p.pw->sealer().active) << p.pw->sealer().reason;
  EXPECT_EQ(p.pw->sealer().start_sequence, 2u) << "two tickets under the application key";
  const auto data = text_bytes(100000);
  ASSERT_TRUE(p.send(data));
  EXPECT_TRUE(p.peer_read() == data);
  EXPECT_EQ(p.pw->sealer().openssl_writes_after_takeover, 0u);
}

TEST(Sealer, PeerKeyUpdateRequestIsAnsweredAndEverythingStaysReadable) {
  for (bool server : {true, false}) {
    peer_pair p({.pw_server = server, .suite = "TLS_AES_256_GCM_SHA384"});
    ASSERT_TRUE(p.handshake());
    const auto a = random_bytes(50000, 1), b = random_bytes(70000, 2), c = random_bytes(3000, 3);
    ASSERT_TRUE(p.send(a));
    EXPECT_TRUE(p.peer_read() == a);
    // The peer asks for an update and sends data under its new key.
    ASSERT_EQ(SSL_key_update(p.peer, SSL_KEY_UPDATE_REQUESTED), 1);
    std::size_t w = 0;
    ASSERT_EQ(SSL_write_ex(p.peer, c.data(), c.size(), &w), 1);
    EXPECT_TRUE(p.pw_read() == c);
    EXPECT_EQ(p.pw->sealer().peer_key_update_requests, 1u);
    EXPECT_EQ(p.pw->sealer().key_updates_sent, 1u) << "answered during the read";
    EXPECT_GT(p.pw->output().pending(), 0u);
    ASSERT_TRUE(p.send(b));  // the answer goes first, then b under the new key
    EXPECT_TRUE(p.peer_read() == b);
    std::error_code ec;
    ASSERT_EQ(p.pw->close(ec), tls_engine::status::ok);
    p.to_peer();
    bool closed = false;
    p.peer_read(&closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(p.pw->sealer().openssl_writes_after_takeover, 0u)
        << "OpenSSL never writes its own answer";
  }
}

// OpenSSL keeps its own answer to update_requested pending (for an SSL_write that never
// comes) and writes it when it reads the peer's next KeyUpdate: expected, dropped, not counted
// as a stray write. Found by tests/fuzz/run_fuzz.sh tls.
TEST(Sealer, KeyUpdateAfterARequestIsNoStrayOpenSslWrite) {
  for (bool server : {true, false}) {
    peer_pair p({.pw_server = server});
    ASSERT_TRUE(p.handshake());
    ASSERT_EQ(SSL_key_update(p.peer, SSL_KEY_UPDATE_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(p.peer), 1);  // sent now
    ASSERT_EQ(SSL_key_update(p.peer, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    ASSERT_EQ(SSL_do_handshake(p.peer), 1);
    const auto c = random_bytes(3000, 4);
    std::size_t w = 0;
    ASSERT_EQ(SSL_write_ex(p.peer, c.data(), c.size(), &w), 1);
    EXPECT_TRUE(p.pw_read() == c);
    EXPECT_EQ(p.pw->sealer().peer_key_update_requests, 1u);
    EXPECT_EQ(p.pw->sealer().openssl_writes_after_takeover, 0u);
    const auto b = random_bytes(20000, 5);
    ASSERT_TRUE(p.send(b));  // the sealer's answer, then b under the new key
    EXPECT_TRUE(p.peer_read() == b);
    EXPECT_EQ(p.pw->sealer().key_updates_sent, 1u);
    EXPECT_EQ(p.pw->sealer().openssl_writes_after_takeover, 0u);
  }
}

// encrypt_record() of nothing seals no record: an OpenSSL reader fails the 33rd empty record
// in a row ("record too small"). Found by tests/fuzz/run_fuzz.sh tls.
TEST(Sealer, EmptyPlaintextSealsNoRecord) {
  for (bool server : {true, false}) {
    peer_pair p({.pw_server = server});
    ASSERT_TRUE(p.handshake());
    const std::size_t before = p.pw->output().pending();
    const std::span<const std::byte> none;
    const std::span<const std::byte> nones[] = {none, none};
    for (std::size_t i = 0; i < 40; ++i) {
      std::error_code ec;
      ASSERT_EQ(p.pw->encrypt_record({nones, 1 + i % 2}, ec), tls_engine::status::ok);
    }
    EXPECT_EQ(p.pw->output().pending(), before);
    const auto b = random_bytes(5000, 6);
    ASSERT_TRUE(p.send(b));
    EXPECT_TRUE(p.peer_read() == b);
  }
}

// The peer writes a record of 1000 bytes, one byte of it flipped on the way, and pagewire
// reads it: `st` and `ec` are what decrypt() answered.
void read_forged_record(peer_pair& p, tls_engine::status& st, std::error_code& ec) {
  const auto c = random_bytes(1000);
  std::size_t w = 0;
  ASSERT_EQ(SSL_write_ex(p.peer, c.data(), c.size(), &w), 1);
  std::vector<std::byte> wire(4096);
  const int n = BIO_read(p.peer_out, wire.data(), static_cast<int>(wire.size()));
  ASSERT_GT(n, 100);
  wire.resize(static_cast<std::size_t>(n));
  wire[50] ^= std::byte{1};  // the peer's record no longer authenticates
  p.pw->feed(to_chain(p.pool, wire));
  filters::page_writer out(p.pool);
  st = p.pw->decrypt(out, 1 << 20, ec);
}

TEST(Sealer, OpenSslAlertAfterABadRecordReachesThePeerSealedByUs) {
  peer_pair p({.pw_server = true});
  ASSERT_TRUE(p.handshake());
  std::error_code ec;
  tls_engine::status st{};
  ASSERT_NO_FATAL_FAILURE(read_forged_record(p, st, ec));
  EXPECT_EQ(st, tls_engine::status::error);
  EXPECT_EQ(ec, filters::errc::tls_protocol);
  EXPECT_EQ(p.pw->sealer().alerts_resealed, 1u);
  EXPECT_EQ(p.pw->sealer().openssl_writes_after_takeover, 0u);
  p.to_peer();
  char buf[64];
  std::size_t got = 0;
  ERR_clear_error();
  const int r = SSL_read_ex(p.peer, buf, sizeof buf, &got);
  ASSERT_EQ(SSL_get_error(p.peer, r), SSL_ERROR_SSL);
  EXPECT_EQ(ERR_GET_REASON(ERR_peek_error()), SSL_AD_REASON_OFFSET + SSL_AD_BAD_RECORD_MAC)
      << filters::openssl_errors();
  ERR_clear_error();
}

// Our side has ended once a fatal alert went out (RFC 8446 6.2) or close_notify did (5.1,
// 6.1): nothing may be sealed after either. OpenSSL's writer (TLS 1.2) refuses SSL_write then;
// pagewire's sealer (TLS 1.3) must refuse too, not send application data after the alert. And
// close() after a fatal alert queues nothing and succeeds under both writers.
class SealerAfterOurEnd : public ::testing::TestWithParam<int> {};

TEST_P(SealerAfterOurEnd, FatalAlertEndsOurWritesAsUnderOpenSsl) {
  for (bool server : {true, false}) {
    peer_pair p({.pw_server = server, .peer_max_version = GetParam()});
    ASSERT_TRUE(p.handshake());
    p.peer_read();  // session tickets, if any
    std::error_code ec;
    tls_engine::status st{};
    ASSERT_NO_FATAL_FAILURE(read_forged_record(p, st, ec));
    ASSERT_EQ(st, tls_engine::status::error);
    p.pw->output().take();  // the fatal alert
    const std::size_t before = p.pw->output().pending();
    const auto data = random_bytes(3000, 8);
    std::size_t accepted = 0;
    ec.clear();
    EXPECT_EQ(p.pw->encrypt(data, accepted, ec), tls_engine::status::error) << server;
    EXPECT_EQ(ec, filters::errc::tls_protocol) << ec.message();
    EXPECT_EQ(accepted, 0u);
    EXPECT_EQ(p.pw->output().pending(), before) << "a record after the fatal alert";
    EXPECT_EQ(p.pw->close(ec), tls_engine::status::ok) << ec.message();
    EXPECT_EQ(p.pw->output().pending(), before) << "close_notify after the fatal alert";
    ERR_clear_error();
  }
}

TEST_P(SealerAfterOurEnd, CloseNotifyEndsOurWritesAsUnderOpenSsl) {
  for (bool server : {true, false}) {
    peer_pair p({.pw_server = server, .peer_max_version = GetParam()});
    ASSERT_TRUE(p.handshake());
    std::error_code ec;
    ASSERT_EQ(p.pw->close(ec), tls_engine::status::ok) << ec.message();
    p.to_peer();
    const auto data = random_bytes(3000, 8);
    std::size_t accepted = 0;
    EXPECT_EQ(p.pw->encrypt(data, accepted, ec), tls_engine::status::error) << server;
    EXPECT_EQ(ec, filters::errc::tls_protocol) << ec.message();
    EXPECT_EQ(accepted, 0u);
    EXPECT_EQ(p.pw->output().pending(), 0u) << "a record after close_notify";
    const auto again = p.pw->close(ec);  // OpenSSL's (TLS 1.2): want_read, the peer's one
    if (GetParam() == TLS1_3_VERSION) {
      EXPECT_EQ(again, tls_engine::status::ok);
    }
    EXPECT_EQ(p.pw->output().pending(), 0u) << "a second close_notify";
    ERR_clear_error();
    if (GetParam() == TLS1_3_VERSION) {  // the peer, still sending, asks for a key update
      ASSERT_EQ(SSL_key_update(p.peer, SSL_KEY_UPDATE_REQUESTED), 1);
      ASSERT_EQ(SSL_do_handshake(p.peer), 1);
      p.pw_read();
      EXPECT_EQ(p.pw->sealer().peer_key_update_requests, 1u);
      EXPECT_EQ(p.pw->output().pending(), 0u) << "a KeyUpdate after close_notify";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Versions, SealerAfterOurEnd,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), [](const auto& info) {
                           return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12";
                         });

// A client that asked for a smaller maximum fragment length (RFC 6066 4, `openssl s_client
// -maxfraglen 512`), granted by OpenSSL in the server's extensions, refuses any longer record
// with record_overflow. OpenSSL's writer (TLS 1.2) keeps to it; the sealer (TLS 1.3) must too.
class NegotiatedMaxFragment : public ::testing::TestWithParam<int> {};

TEST_P(NegotiatedMaxFragment, BoundsTheRecordsSent) {
  peer_pair p({.pw_server = true,
               .peer_max_version = GetParam(),
               .peer_max_fragment = TLSEXT_max_fragment_length_512});
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(SSL_SESSION_get_max_fragment_length(SSL_get_session(p.pw->native())),
            TLSEXT_max_fragment_length_512);
  EXPECT_LE(p.pw->record_plaintext(0), 512u);
  EXPECT_LE(p.pw->record_plaintext(1460), 512u);
  const auto data = random_bytes(20000, 12);
  ASSERT_TRUE(p.send(data));
  EXPECT_TRUE(p.peer_read() == data);
  ERR_clear_error();
}

INSTANTIATE_TEST_SUITE_P(Versions, NegotiatedMaxFragment,
                         ::testing::Values(TLS1_2_VERSION, TLS1_3_VERSION), [](const auto& info) {
                           return info.param == TLS1_3_VERSION ? "Tls13" : "Tls12";
                         });

TEST(Sealer, OwnKeyUpdatesAfterRecordsPerKey) {
  peer_pair p({.pw_server = false, .suite = "TLS_CHACHA20_POLY1305_SHA256", .records_per_key = 3});
  ASSERT_TRUE(p.handshake());
  const auto data = random_bytes(20 * 16384, 9);  // 20 full records
  ASSERT_TRUE(p.send(data));
  EXPECT_TRUE(p.peer_read() == data);
  // Two data records and the KeyUpdate per key.
  EXPECT_EQ(p.pw->sealer().key_updates_sent, 9u);
}

TEST(Sealer, Tls12StaysWithOpenSsl) {
  peer_pair p({.pw_server = true, .peer_max_version = TLS1_2_VERSION});
  ASSERT_TRUE(p.handshake());
  EXPECT_EQ(p.pw->version(), "TLSv1.2");
  EXPECT_FALSE(p.pw->sealer().active);
  EXPECT_NE(p.pw->sealer().reason.find("TLSv1.2"), std::string::npos) << p.pw->sealer().reason;
  const auto data = random_bytes(40000);
  ASSERT_TRUE(p.send(data));
  EXPECT_TRUE(p.peer_read() == data);
}

TEST(Sealer, OptionOffStaysWithOpenSsl) {
  peer_pair p({.pw_server = true, .record_sealer = false});
  ASSERT_TRUE(p.handshake());
  EXPECT_FALSE(p.pw->sealer().active);
  EXPECT_NE(p.pw->sealer().reason.find("off"), std::string::npos) << p.pw->sealer().reason;
  const auto data = random_bytes(40000);
  ASSERT_TRUE(p.send(data));
  EXPECT_TRUE(p.peer_read() == data);
}

std::vector<std::string>& keylog_lines() {
  static std::vector<std::string> v;
  return v;
}

TEST(Sealer, KeylogCallbackInstalledEarlierStillGetsEveryLine) {
  keylog_lines().clear();
  peer_pair p({.pw_server = true,
               .keylog = [](const SSL*, const char* line) { keylog_lines().emplace_back(line); }});
  ASSERT_TRUE(p.handshake());
  EXPECT_TRUE(p.pw->sealer().active) << p.pw->sealer().reason;
  bool server_secret = false;
  for (const auto& l : keylog_lines())
    server_secret |= l.rfind("SERVER_TRAFFIC_SECRET_0 ", 0) == 0;
  EXPECT_TRUE(server_secret);
  EXPECT_GE(keylog_lines().size(), 5u);  // handshake, application and exporter secrets
}

// tls_layer over the memory transport: the stats say who sealed, and the body arrives.
void layer_transfer(bool sealer_on) {
  runtime::context ctx;
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{256} << 20}};
  auto [a, b] = filters::memory_transport::make_pair(ctx, pool);
  filters::tls_options so;
  so.cert_file = self_signed().cert;
  so.key_file = self_signed().key;
  so.record_sealer = sealer_on;
  std::error_code ec;
  auto sctx = filters::tls_context::create(so, ec);
  ASSERT_FALSE(ec);
  filters::tls_layer server(std::move(b), sctx, {}, pool, nullptr, ec);
  ASSERT_FALSE(ec);
  filters::tls_layer client(std::move(a), client_tls(), {}, pool, nullptr, ec);
  ASSERT_FALSE(ec);
  const auto data = text_bytes(700000);
  std::vector<std::byte> got;
  asio::co_spawn(
      ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await send_all(server, to_chain(pool, data), 3));
      },
      asio::detached);
  asio::co_spawn(
      ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await recv_all(client, got));
        EXPECT_FALSE(co_await client.shutdown(asio::use_awaitable));
      },
      asio::detached);
  ctx.run();
  EXPECT_TRUE(got == data);
  const filters::tls_stats st = server.stats();
  EXPECT_EQ(st.record_sealer, sealer_on) << st.record_sealer_reason;
  EXPECT_NE(st.record_sealer_reason.find(sealer_on ? "sealed by pagewire" : "off"),
            std::string::npos)
      << st.record_sealer_reason;
  EXPECT_EQ(st.openssl_writes_after_takeover, 0u);
  EXPECT_TRUE(client.stats().record_sealer) << client.stats().record_sealer_reason;
}

TEST(SealerLayer, StatsSayPagewireSealsAndTheBodyArrives) {
  layer_transfer(true);
}

TEST(SealerLayer, OptionOffKeepsOpenSslAndSaysSo) {
  layer_transfer(false);
}

// The sealer alone: a sealer and an opener built from the same secret.
TEST(SealerAlone, RecordsSpanningPagesOpenAgainAcrossKeyUpdates) {
  fs::page_pool pool;
  filters::page_writer out(pool);
  const auto secret = random_bytes(32, 5);
  std::string why;
  auto s = sealer::create(0x1301, secret, 1, 4, why);
  auto o = sealer::create(0x1301, secret, 1, 0, why);
  ASSERT_TRUE(s && o) << why;
  EXPECT_FALSE(sealer::create(0x1304, secret, 0, 0, why)) << "CCM is not sealed";
  std::vector<std::vector<std::byte>> sent;
  for (std::size_t n : {std::size_t{0}, std::size_t{4090}, std::size_t{16384}, std::size_t{1},
                        std::size_t{9000}, std::size_t{16384}}) {
    sent.push_back(random_bytes(n, n));
    ASSERT_EQ(s->seal(out, sent.back()), sealer::result::ok);
  }
  const auto wire = to_bytes(out.take());
  std::size_t off = 0, got = 0;
  std::vector<std::byte> plain;
  while (off < wire.size()) {
    const std::size_t len = std::size_t{std::to_integer<unsigned>(wire[off + 3])} << 8 |
                            std::to_integer<unsigned>(wire[off + 4]);
    sealer::content type;
    ASSERT_TRUE(o->open(std::span(wire).subspan(off, 5 + len), plain, type));
    off += 5 + len;
    if (type == sealer::content::handshake) {
      ASSERT_EQ(plain.size(), 5u);
      EXPECT_EQ(plain[0], std::byte{24});  // KeyUpdate
      ASSERT_TRUE(o->update_key());
      continue;
    }
    ASSERT_EQ(type, sealer::content::application_data);
    ASSERT_LT(got, sent.size());
    EXPECT_TRUE(plain == sent[got]);
    ++got;
  }
  EXPECT_EQ(got, sent.size());
  // Sequence 1, 2 data, 3 KeyUpdate; then 0, 1, 2 data, 3 KeyUpdate; then 0.
  EXPECT_EQ(s->key_updates(), 2u);
  // A flipped bit does not open, and the sequence number stays.
  const std::uint64_t seq = o->sequence();
  ASSERT_EQ(s->seal(out, sent[1]), sealer::result::ok);
  auto rec = to_bytes(out.take());
  rec[100] ^= std::byte{1};
  sealer::content type;
  EXPECT_FALSE(o->open(rec, plain, type));
  EXPECT_EQ(o->sequence(), seq);
}

TEST(SealerAlone, PlaintextInPiecesSealsAsTheRecordOfTheirConcatenation) {
  fs::page_pool pool;
  filters::page_writer out(pool);
  const auto secret = random_bytes(32, 6);
  std::string why;
  for (std::uint16_t suite :
       {std::uint16_t{0x1301}, std::uint16_t{0x1302}, std::uint16_t{0x1303}}) {
    auto s = sealer::create(suite, random_bytes(suite == 0x1302 ? 48 : 32, suite), 0, 0, why);
    auto o = sealer::create(suite, random_bytes(suite == 0x1302 ? 48 : 32, suite), 0, 0, why);
    ASSERT_TRUE(s && o) << why;
    const auto plain = random_bytes(16384, suite);
    // Cuts inside cipher blocks, pieces of one byte, an empty piece, and whole pages.
    for (const std::vector<std::size_t>& cuts : {std::vector<std::size_t>{0, 16384},
                                                 {0, 1, 2, 17, 4096, 4096, 9001, 16383, 16384},
                                                 {0, 4096, 8192, 12288, 16384},
                                                 {0, 100}}) {
      std::vector<std::span<const std::byte>> pieces;
      for (std::size_t i = 0; i + 1 < cuts.size(); ++i)
        pieces.push_back(std::span(plain).subspan(cuts[i], cuts[i + 1] - cuts[i]));
      ASSERT_EQ(s->seal(out, sealer::pieces(pieces)), sealer::result::ok);
      const auto wire = to_bytes(out.take());
      std::vector<std::byte> got;
      sealer::content type;
      ASSERT_TRUE(o->open(wire, got, type)) << suite;
      EXPECT_EQ(type, sealer::content::application_data);
      EXPECT_TRUE(got == std::vector<std::byte>(plain.begin(), plain.begin() + cuts.back()))
          << suite << " " << cuts.size();
    }
  }
  // More than a record in pieces is refused, nothing written.
  auto s = sealer::create(0x1301, secret, 0, 0, why);
  const auto big = random_bytes(16385, 1);
  const std::span<const std::byte> two[] = {std::span(big).first(10), std::span(big).subspan(10)};
  EXPECT_EQ(s->seal(out, sealer::pieces(two)), sealer::result::error);
  EXPECT_EQ(out.pending(), 0u);
}

TEST(SealerAlone, RefusedPageLeavesNoPartialRecord) {
  fs::page_pool pool(fs::page_pool_options{.max_bytes = std::size_t{2} << 20});
  std::vector<fs::page_ref> held;  // all of the pool but two pages
  while (fs::page_ref p = pool.allocate())
    held.push_back(std::move(p));
  ASSERT_GT(held.size(), 2u);
  held.resize(held.size() - 2);
  filters::page_writer out(pool);
  const auto secret = random_bytes(48, 6);
  std::string why;
  auto s = sealer::create(0x1302, secret, 0, 0, why);
  ASSERT_TRUE(s) << why;
  const auto big = random_bytes(16384);
  EXPECT_EQ(s->seal(out, big), sealer::result::want_pages);
  EXPECT_EQ(out.pending(), 0u);
  EXPECT_EQ(s->sequence(), 0u);
  EXPECT_EQ(s->seal(out, std::span(big).first(100)), sealer::result::ok);
  EXPECT_EQ(out.pending(), 100u + sealer::kOverhead);
}

}  // namespace
}  // namespace pwtest
