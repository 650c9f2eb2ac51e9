// Layer stacks over the in-memory transport pair: one application body over plain, tls,
// gzip+plain and gzip+tls unchanged; completion stacking (each write reports the
// application's bytes); TLS and gzip through the random 1..4096-byte send shim; the
// inactive filter leaves file ranges alone; every failure ends in a clear error, and a
// record altered in flight hands up no forged byte.

#include "tests/filters/stack.h"

#include <fcntl.h>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/ktls.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/fs/stats.h>
#include <pagewire/runtime/timer.h>

namespace pwtest {
namespace {

// The application: the client sends `data` in a few writes and shuts down; the server
// reads to the end, answers with what it got (an echo) and shuts down; the client reads
// the echo to the end. Runs unchanged over any stack.
void echo_body(world& w, filters::stream& client, filters::stream& server,
               const std::vector<std::byte>& data) {
  std::vector<std::byte> at_server, at_client;
  bool client_done = false, server_done = false;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await send_all(client, to_chain(w.pool, data), 3));
        EXPECT_FALSE(co_await recv_all(client, at_client));
        client_done = true;
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await recv_all(server, at_server));
        EXPECT_FALSE(co_await send_all(server, to_chain(w.pool, at_server), 2));
        server_done = true;
      },
      asio::detached);
  w.ctx.run();
  EXPECT_TRUE(client_done && server_done);
  EXPECT_TRUE(at_server == data) << "server got " << at_server.size() << " of " << data.size();
  EXPECT_TRUE(at_client == data) << "client got " << at_client.size() << " of " << data.size();
}

class Transparency : public ::testing::TestWithParam<std::string> {};

TEST_P(Transparency, SameApplicationPassesOverEveryStack) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4097}, std::size_t{300000},
                        std::size_t{(1u << 20) + 3}}) {
    world w;
    auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
    auto client = build_stack(GetParam(), std::move(a), false, w.env());
    auto server = build_stack(GetParam(), std::move(b), true, w.env());
    echo_body(w, *client, *server, text_bytes(n, n));
  }
}

INSTANTIATE_TEST_SUITE_P(Stacks, Transparency,
                         ::testing::Values("plain", "tls", "gzip+plain", "gzip+tls"), stack_name);

TEST(StackLarge, SixtyFourMiBThroughGzipOverTlsOnce) {
  world w;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  auto client = build_stack("gzip+tls", std::move(a), false, w.env());
  auto server = build_stack("gzip+tls", std::move(b), true, w.env());
  echo_body(w, *client, *server, random_bytes(64u << 20));
}

TEST(StackLarge, SixteenMiBThroughZstd) {
  world w;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  auto client = build_stack("zstd+plain", std::move(a), false, w.env());
  auto server = build_stack("zstd+plain", std::move(b), true, w.env());
  echo_body(w, *client, *server, text_bytes(16u << 20));
}

class ShortSends : public ::testing::TestWithParam<std::string> {};

TEST_P(ShortSends, RandomSendsOfOneTo4096BytesStayByteExact) {
  for (std::uint64_t seed : {1u, 2u, 3u}) {
    world w;
    auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool, {4096, seed});
    filters::memory_transport* raw = a.get();
    auto client = build_stack(GetParam(), std::move(a), false, w.env());
    auto server = build_stack(GetParam(), std::move(b), true, w.env());
    echo_body(w, *client, *server, random_bytes(1u << 20, seed));
    EXPECT_GT(raw->sends(), 256u);  // the shim really cut the records
  }
}

INSTANTIATE_TEST_SUITE_P(Stacks, ShortSends, ::testing::Values("tls", "gzip+tls", "zstd+plain"),
                         stack_name);

// A transport that records what reached it and completes at once.
class recording_transport final : public filters::stream {
 public:
  explicit recording_transport(runtime::context& ctx) : stream(ctx) {}
  void start_write(filters::write_request& r) override {
    got.append(std::move(r.data));
    r.finish(context(), {}, got.size());
  }
  void start_read(filters::read_waiter& w) override { w.fn(&w, filters::errc::eof, {}); }
  void start_shutdown(filters::done_waiter& w) override { w.fn(&w, {}); }
  void cancel() override {}
  std::string describe() const override { return "recording"; }
  fs::chain got;
};

TEST(ContentFilter, InactiveFilterPassesFileRangesUntouched) {
  world w;
  const auto path = tmpdir() + "/body.bin";
  write_file(path, text_bytes(100000));
  std::error_code ec;
  auto f = fs::file::open(path.c_str(), ec);
  ASSERT_FALSE(ec);
  auto bottom = std::make_unique<recording_transport>(w.ctx);
  recording_transport* rec = bottom.get();
  filters::content_filter_options o;  // no coding: inactive
  filters::content_filter layer(std::move(bottom), o, w.pool, &w.cache, ec);
  ASSERT_FALSE(ec);
  fs::chain c;
  c.append(fs::slice::from_static("HTTP/1.1 200 OK\r\n\r\n", 19));
  c.append(fs::file_range(f, 10, 90000));
  const auto copied = fs::stats::copied_bytes();
  std::uint64_t reported = 0;
  layer.write(std::move(c), [&](std::error_code e, std::uint64_t n) {
    EXPECT_FALSE(e);
    reported = n;
  });
  w.ctx.run();
  EXPECT_EQ(reported, 90019u);
  ASSERT_EQ(rec->got.segment_count(), 2u);
  const auto& r = std::get<fs::file_range>(rec->got.segments()[1]);
  EXPECT_EQ(r.handle(), f);
  EXPECT_EQ(r.offset(), 10u);
  EXPECT_EQ(r.size(), 90000u);
  EXPECT_EQ(fs::stats::copied_bytes(), copied);
}

TEST(ContentFilter, GzipReadsFileRangesThroughThePageCacheAndReportsInputBytes) {
  world w;
  const auto data = text_bytes(3u << 20);
  const auto path = tmpdir() + "/text.bin";
  write_file(path, data);
  std::error_code ec;
  auto f = fs::file::open(path.c_str(), ec);
  ASSERT_FALSE(ec);
  auto bottom = std::make_unique<recording_transport>(w.ctx);
  recording_transport* rec = bottom.get();
  filters::content_filter_options o;
  o.encode = filters::encoder_options{filters::coding::gzip, 6};
  o.output_limit = 64 * 1024;  // many trips below for one write
  filters::content_filter layer(std::move(bottom), o, w.pool, &w.cache, ec);
  ASSERT_FALSE(ec);
  fs::chain c;
  c.append(fs::file_range(f, 0, data.size()));
  std::uint64_t reported = 0;
  layer.write(std::move(c), [&](std::error_code e, std::uint64_t n) {
    EXPECT_FALSE(e) << e.message();
    reported = n;
  });
  w.ctx.run();
  EXPECT_EQ(reported, data.size());         // input consumed, not compressed bytes
  EXPECT_LT(rec->got.size(), data.size());  // what went below is smaller
  EXPECT_GT(w.cache.stats().bytes_read, 0u);
  fs::chain out;
  ASSERT_FALSE(filters::decompress(rec->got, {filters::coding::gzip}, w.pool, out));
  EXPECT_EQ(to_bytes(out), data);
}

TEST(ContentFilter, OpenMessageIsClosedByShutdown) {
  world w;
  std::error_code ec;
  auto bottom = std::make_unique<recording_transport>(w.ctx);
  recording_transport* rec = bottom.get();
  filters::content_filter_options o;
  o.encode = filters::encoder_options{filters::coding::zstd, 3};
  filters::content_filter layer(std::move(bottom), o, w.pool, &w.cache, ec);
  const auto data = text_bytes(50000);
  layer.write(to_chain(w.pool, data), filters::write_flags::more,
              [&](std::error_code e, std::uint64_t n) {
                EXPECT_FALSE(e);
                EXPECT_EQ(n, data.size());
                layer.shutdown([](std::error_code e2) { EXPECT_FALSE(e2); });
              });
  w.ctx.run();
  fs::chain out;
  ASSERT_FALSE(filters::decompress(rec->got, {filters::coding::zstd}, w.pool, out));
  EXPECT_EQ(to_bytes(out), data);
}

// A write that fails for want of pages, after the encoder took input whose output was then
// dropped: the member is broken, so the next write and the shutdown fail with the same error
// and nothing more of it goes below (found by tests/fuzz/run_fuzz.sh stack). None of it had
// gone below, so the shutdown sends the start of a member that never ends: the stream reads as
// truncated, not as a clean (empty) end.
TEST(ContentFilter, WriteAfterAFailedWriteFailsAndSendsNothing) {
  for (const auto coding : {filters::coding::gzip, filters::coding::zstd}) {
    world w;
    fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{8} << 20}};  // the layer's
    std::error_code ec;
    auto bottom = std::make_unique<recording_transport>(w.ctx);
    recording_transport* rec = bottom.get();
    filters::content_filter_options o;
    o.encode = filters::encoder_options{coding, 1};
    filters::content_filter layer(std::move(bottom), o, pool, &w.cache, ec);
    ASSERT_FALSE(ec);
    const auto first = text_bytes(512 * 1024, 3), second = text_bytes(10000, 4);
    std::vector<fs::page_ref> ballast;  // all free pages of the layer's pool but two
    for (fs::page_ref p; (p = pool.allocate());)
      ballast.push_back(std::move(p));
    ballast.resize(ballast.size() - 2);
    std::size_t sent_below = 0;
    int done = 0;
    layer.write(to_chain(w.pool, first), [&](std::error_code e1, std::uint64_t n1) {
      EXPECT_EQ(e1, filters::errc::pool_exhausted) << e1.message();
      EXPECT_LT(n1, first.size());
      ballast.clear();
      sent_below = rec->got.size();
      layer.write(to_chain(w.pool, second), [&](std::error_code e2, std::uint64_t n2) {
        EXPECT_EQ(e2, filters::errc::pool_exhausted) << e2.message();
        EXPECT_EQ(n2, 0u);
        EXPECT_EQ(rec->got.size(), sent_below) << "bytes went below after the failed write";
        layer.shutdown([&](std::error_code e3) {
          EXPECT_EQ(e3, filters::errc::pool_exhausted) << e3.message();
          ++done;
        });
      });
    });
    w.ctx.run();
    EXPECT_EQ(done, 1);
    fs::chain out;
    EXPECT_EQ(filters::decompress(rec->got, {coding}, w.pool, out), filters::errc::truncated);
  }
}

TEST(ContentFilter, DecodingBombEndsWithOutputLimit) {
  world w;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  fs::chain bomb;
  ASSERT_FALSE(filters::compress(to_chain(w.pool, std::vector<std::byte>(32u << 20)),
                                 {filters::coding::gzip, 9}, w.pool, bomb));
  filters::content_filter_options o;
  o.decode = filters::decoder_options{filters::coding::gzip};
  o.decode->max_output = 4u << 20;
  std::error_code ec;
  filters::content_filter reader(std::move(b), o, w.pool, nullptr, ec);
  std::error_code last;
  std::uint64_t got = 0;
  std::size_t peak_pages = 0;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        co_await send_all(*a, std::move(bomb));
        for (int i = 0; i < 10000; ++i) {
          auto [e, c] = co_await reader.read(asio::use_awaitable);
          peak_pages = std::max(peak_pages, w.pool.stats().pages_in_use);
          got += c.size();
          if (e) {
            last = e;
            break;
          }
        }
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(last, filters::errc::output_limit) << last.message();
  EXPECT_LE(got, 4u << 20);
  EXPECT_LT(peak_pages * fs::kPageSize, 8u << 20);  // each read is bounded, not the bomb
}

TEST(ContentFilter, TruncatedGzipStreamEndsWithTruncated) {
  world w;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  fs::chain packed;
  ASSERT_FALSE(filters::compress(to_chain(w.pool, text_bytes(200000)), {filters::coding::gzip},
                                 w.pool, packed));
  packed = packed.split(packed.size() / 2);
  filters::content_filter_options o;
  o.decode = filters::decoder_options{filters::coding::gzip};
  std::error_code ec;
  filters::content_filter reader(std::move(b), o, w.pool, nullptr, ec);
  std::vector<std::byte> got;
  std::error_code last;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        co_await send_all(*a, std::move(packed));
        last = co_await recv_all(reader, got);
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(last, filters::errc::truncated) << last.message();
}

// ---- TLS failures --------------------------------------------------------------------

TEST(Tls, BadCertificatePathIsAClearError) {
  filters::tls_options o;
  o.cert_file = tmpdir() + "/no-such-cert.pem";
  o.key_file = tmpdir() + "/no-such-key.pem";
  std::error_code ec;
  std::string detail;
  EXPECT_FALSE(filters::tls_context::create(o, ec, &detail));
  EXPECT_EQ(ec, filters::errc::tls_certificate);
  EXPECT_FALSE(detail.empty());
  o.cert_file = self_signed().cert;
  o.key_file = self_signed().cert;  // a certificate is not a key
  EXPECT_FALSE(filters::tls_context::create(o, ec, &detail));
  EXPECT_EQ(ec, filters::errc::tls_certificate);
}

std::error_code server_handshake_against(world& w, std::vector<std::byte> peer_bytes,
                                         bool close_after, std::chrono::milliseconds timeout) {
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  std::error_code ec;
  filters::tls_layer_options o;
  o.handshake_timeout = timeout;
  filters::tls_layer server(std::move(b), server_tls(), o, w.pool, nullptr, ec);
  std::error_code result = filters::errc::busy;
  server.async_handshake([&](std::error_code e) {
    result = e;
    a.reset();
  });
  if (!peer_bytes.empty()) {
    a->write(to_chain(w.pool, peer_bytes), [](std::error_code, std::uint64_t) {});
  }
  if (close_after) a->shutdown([](std::error_code) {});
  w.ctx.run();
  return result;
}

// A request line where the ClientHello should be is told apart (plain_http: a server may
// answer it in plain text); other bytes that are not TLS are a failed handshake.
TEST(Tls, PlainHttpClientOnTheTlsPortFailsTheHandshakeAsPlainHttp) {
  const auto against = [](const std::string& first) {
    world w;
    std::vector<std::byte> bytes(reinterpret_cast<const std::byte*>(first.data()),
                                 reinterpret_cast<const std::byte*>(first.data() + first.size()));
    return server_handshake_against(w, bytes, false, std::chrono::seconds(30));
  };
  EXPECT_EQ(against("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), filters::errc::plain_http);
  EXPECT_EQ(against("POST /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), filters::errc::plain_http);
  EXPECT_EQ(against("CONNECT h:443 HTTP/1.1\r\n\r\n"), filters::errc::plain_http);
  EXPECT_EQ(against("HELLO THERE, NOT TLS AT ALL\r\n"), filters::errc::tls_handshake);
}

TEST(Tls, SilentPeerTimesOutTheHandshake) {
  world w;
  EXPECT_EQ(server_handshake_against(w, {}, false, std::chrono::milliseconds(50)),
            filters::errc::handshake_timeout);
}

// A transport whose sends complete `send_delay` after they start, whatever cancel() does (as a
// send the kernel finished whose completion is still queued when the canceller runs), to a
// peer that never answers: reads wait until cancelled.
class late_sends_silent_peer final : public filters::stream {
 public:
  late_sends_silent_peer(runtime::context& ctx, std::chrono::milliseconds send_delay)
      : stream(ctx), delay_(send_delay), timer_(ctx) {}
  void start_write(filters::write_request& r) override {
    ++writes;
    timer_.expires_after(delay_);
    timer_.async_wait([this, &r](std::error_code ec) {
      if (!ec) r.finish(context(), {}, r.data.size());
    });
  }
  void start_read(filters::read_waiter& w) override { rw_ = &w; }
  void start_shutdown(filters::done_waiter& w) override { w.fn(&w, {}); }
  void cancel() override {
    if (filters::read_waiter* w = std::exchange(rw_, nullptr)) {
      context().post([w] { w->fn(w, std::make_error_code(std::errc::operation_canceled), {}); });
    }
  }
  std::string describe() const override { return "late_sends"; }
  int writes = 0;

 private:
  std::chrono::milliseconds delay_;
  runtime::timer timer_;
  filters::read_waiter* rw_ = nullptr;
};

// The handshake timer fires while the ClientHello's send is done but not yet reported: the
// cancel below finds nothing to cancel, and the send then completes without an error. The
// handshake must still end with handshake_timeout, not go on to wait for the silent peer.
TEST(Tls, TimeoutWhileASendCompletesStillEndsTheHandshake) {
  world w;
  auto lower = std::make_unique<late_sends_silent_peer>(w.ctx, std::chrono::milliseconds(150));
  late_sends_silent_peer* below = lower.get();
  filters::tls_layer_options o;
  o.handshake_timeout = std::chrono::milliseconds(30);
  std::error_code ec;
  filters::tls_layer client(std::move(lower), client_tls(), o, w.pool, nullptr, ec);
  ASSERT_FALSE(ec) << ec.message();
  std::error_code result = filters::errc::busy;
  runtime::timer guard(w.ctx);  // a handshake left waiting would keep run() going for ever
  client.async_handshake([&](std::error_code e) {
    result = e;
    guard.cancel();
  });
  guard.expires_after(std::chrono::seconds(3));
  guard.async_wait([&](std::error_code e) {
    if (!e) w.ctx.stop();
  });
  w.ctx.run();
  EXPECT_EQ(below->writes, 1);
  EXPECT_EQ(result, filters::errc::handshake_timeout) << result.message();
}

TEST(Tls, PeerVanishingMidHandshakeIsAnError) {
  world w;
  // The first 40 bytes of a ClientHello-looking record, then FIN.
  std::vector<std::byte> partial = {std::byte{0x16}, std::byte{0x03}, std::byte{0x01},
                                    std::byte{0x02}, std::byte{0x00}};
  partial.resize(40, std::byte{0x01});
  const auto ec = server_handshake_against(w, partial, true, std::chrono::seconds(30));
  EXPECT_TRUE(ec == filters::errc::tls_handshake || ec == filters::errc::truncated) << ec.message();
}

// A layer that sees each write on its way down (start_write) and passes the rest through.
class write_hook : public filters::layer {
 public:
  write_hook(std::unique_ptr<filters::stream> lower, std::string name)
      : layer(std::move(lower)), name_(std::move(name)) {}
  void start_read(filters::read_waiter& w) override { lower_->start_read(w); }
  void start_shutdown(filters::done_waiter& w) override { lower_->start_shutdown(w); }
  std::string describe() const override { return name_ + ">" + lower_->describe(); }

 private:
  std::string name_;
};

// Forwards writes until `limit` bytes went below, then cuts the stream (FIN mid-record).
class cutter final : public write_hook {
 public:
  cutter(std::unique_ptr<filters::stream> lower, std::uint64_t limit)
      : write_hook(std::move(lower), "cutter"), left_(limit) {}
  void start_write(filters::write_request& r) override {
    if (r.data.size() > left_) {
      r.data = r.data.split(left_);
      cut_ = true;
    }
    left_ -= r.data.size();
    lower_->start_write(r);
    if (cut_) lower_->shutdown([](std::error_code) {});
  }

 private:
  std::uint64_t left_;
  bool cut_ = false;
};

// Forwards writes, but flips one bit of the byte at stream offset `at` (in a copy: the
// writer's pages are left alone), as a corrupting middlebox or a forger would.
class tamperer final : public write_hook {
 public:
  tamperer(std::unique_ptr<filters::stream> lower, fs::page_pool& pool, std::uint64_t at)
      : write_hook(std::move(lower), "tamperer"), pool_(pool), at_(at) {}
  void start_write(filters::write_request& r) override {
    const std::uint64_t n = r.data.size();
    if (offset_ <= at_ && at_ < offset_ + n) {
      std::vector<std::byte> bytes = to_bytes(r.data);
      bytes[at_ - offset_] ^= std::byte{0x10};
      r.data = to_chain(pool_, bytes);
    }
    offset_ += n;
    lower_->start_write(r);
  }

 private:
  fs::page_pool& pool_;
  std::uint64_t at_;
  std::uint64_t offset_ = 0;
};

// A TLS client (highest version `client_version`) writes `sent` with `hook` between it and
// its end of a memory pair; the server reads to the end. Returns how the server's reads
// ended; `got` holds what they handed up.
template <typename MakeHook>
std::error_code server_reads_through(world& w, MakeHook make_hook, int client_version,
                                     const std::vector<std::byte>& sent,
                                     std::vector<std::byte>& got) {
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  std::error_code ec;
  filters::tls_layer server(std::move(b), server_tls(), {}, w.pool, nullptr, ec);
  EXPECT_FALSE(ec) << ec.message();
  filters::tls_layer client(make_hook(std::move(a)), client_tls(client_version), {}, w.pool,
                            nullptr, ec);
  EXPECT_FALSE(ec) << ec.message();
  if (ec) return ec;
  std::error_code last;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        co_await client.write(to_chain(w.pool, sent), asio::use_awaitable);
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> { last = co_await recv_all(server, got); }, asio::detached);
  w.ctx.run();
  return last;
}

TEST(Tls, TruncatedRecordIsAnErrorNotAHang) {
  world w;
  std::vector<std::byte> got;
  const std::error_code last = server_reads_through(
      w, [](auto lower) { return std::make_unique<cutter>(std::move(lower), 20000); }, 13,
      random_bytes(100000), got);
  EXPECT_EQ(last, filters::errc::truncated) << last.message();
  EXPECT_LT(got.size(), 20000u);
}

class TamperedRecord : public ::testing::TestWithParam<int> {};

// A record altered in flight fails authentication: the reader ends with tls_protocol after
// exactly the records before it, and never hands up a forged byte.
TEST_P(TamperedRecord, EndsTheReadWithAProtocolErrorAfterOnlyGenuineBytes) {
  world w;
  const std::vector<std::byte> sent = random_bytes(200000, 3);
  std::vector<std::byte> got;
  // 50,000 bytes into the client's stream: past its handshake, inside its application data.
  const std::error_code last = server_reads_through(
      w, [&](auto lower) { return std::make_unique<tamperer>(std::move(lower), w.pool, 50000); },
      GetParam(), sent, got);
  EXPECT_EQ(last, filters::errc::tls_protocol) << last.message();
  // Up to the record that holds offset 50,000 (records carry at most 16 KiB), nothing more.
  EXPECT_GT(got.size(), 50000u - 2 * 16384);
  EXPECT_LT(got.size(), 50000u);
  EXPECT_TRUE(std::equal(got.begin(), got.end(), sent.begin())) << "a forged byte was handed up";
}

INSTANTIATE_TEST_SUITE_P(Versions, TamperedRecord, ::testing::Values(12, 13),
                         [](const auto& info) { return "Tls1" + std::to_string(info.param % 10); });

TEST(Tls, NegotiatesAlpnAndReportsTheUserspacePath) {
  world w;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  std::error_code ec;
  filters::tls_layer server(std::move(b), server_tls(), {}, w.pool, nullptr, ec);
  filters::tls_layer client(std::move(a), client_tls(12), {}, w.pool, nullptr, ec);
  int done = 0;
  auto count = [&](std::error_code e) {
    EXPECT_FALSE(e) << e.message();
    ++done;
  };
  server.async_handshake(count);
  client.async_handshake(count);
  w.ctx.run();
  EXPECT_EQ(done, 2);
  EXPECT_EQ(server.engine().alpn(), "http/1.1");
  EXPECT_EQ(client.engine().version(), "TLSv1.2");
  EXPECT_EQ(server.stats().path, filters::tls_path::userspace);
  // No socket below a memory transport: the decision says so, or names what is missing.
  EXPECT_EQ(server.stats().ktls_reason,
            filters::decide_ktls(filters::probe_ktls(), true, false).reason);
  EXPECT_FALSE(server.stats().ktls_attempted);
  EXPECT_EQ(server.describe(), "tls(userspace)>memory");
}

TEST(Ktls, UlpListParsingAndProbeAgree) {
  EXPECT_TRUE(filters::ulp_list_has_tls("mptcp tls"));
  EXPECT_TRUE(filters::ulp_list_has_tls("tls\n"));
  EXPECT_FALSE(filters::ulp_list_has_tls("mptcp"));
  EXPECT_FALSE(filters::ulp_list_has_tls("tlsx"));
  const auto& p = filters::probe_ktls();
  EXPECT_EQ(p.kernel_ulp, filters::ulp_list_has_tls(p.available_ulps));
  EXPECT_FALSE(p.reason().empty());
}

}  // namespace
}  // namespace pwtest

namespace pwtest {
namespace {

// Two writes through a TLS client (TLS 1.3 with pagewire's record sealer, or 1.2 with
// OpenSSL's writer) to a server that reads them back; the client's layer stats after each.
struct two_writes {
  std::vector<std::byte> got;
  filters::tls_stats first, second;
  std::uint64_t gather_copied = 0;  // fs::stats bytes copied to gather, both writes
};

two_writes write_twice(world& w, int max_version, fs::chain one, fs::chain two) {
  two_writes r;
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  std::error_code ec;
  filters::tls_layer server(std::move(b), server_tls(), {}, w.pool, nullptr, ec);
  filters::tls_layer client(std::move(a), client_tls(max_version), {}, w.pool, nullptr, ec);
  const std::uint64_t n = one.size() + two.size();
  int done = 0;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await client.async_handshake(asio::use_awaitable));
        const fs::copy_snapshot before = fs::stats::snapshot();
        auto [e1, n1] = co_await client.write(std::move(one), asio::use_awaitable);
        EXPECT_FALSE(e1) << e1.message();
        r.first = client.stats();
        auto [e2, n2] = co_await client.write(std::move(two), asio::use_awaitable);
        EXPECT_FALSE(e2) << e2.message();
        r.gather_copied = (fs::stats::snapshot() - before)
                              .bytes[static_cast<std::size_t>(fs::copy_reason::gather)];
        r.second = client.stats();
        EXPECT_EQ(n1 + n2, n);
        EXPECT_FALSE(co_await client.shutdown(asio::use_awaitable));
        ++done;
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await recv_all(server, r.got));
        ++done;
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(done, 2);
  return r;
}

// `data` in pool pages with a hole after each page (every slice `slice_bytes` at the start of
// its own page): nothing back to back in memory.
fs::chain scattered_chain(world& w, const std::vector<std::byte>& data, std::size_t slice_bytes,
                          std::vector<fs::page_ref>& holes) {
  fs::chain c;
  for (std::size_t off = 0; off < data.size(); off += slice_bytes) {
    const std::size_t n = std::min(slice_bytes, data.size() - off);
    fs::page_ref p = w.pool.allocate();
    holes.push_back(w.pool.allocate());
    std::memcpy(p.data(), data.data() + off, n);
    c.append(fs::slice(p, 0, n));
  }
  return c;
}

std::vector<std::byte> twice(const std::vector<std::byte>& data) {
  auto t = data;
  t.insert(t.end(), data.begin(), data.end());
  return t;
}

// TLS 1.3: pagewire's record sealer reads a record's plaintext from up to 16 slices where they
// lie, so pages back to back and scattered pages (page-cache pages of a file) are both sealed
// without a copy.
TEST(TlsCopies, RecordSealerSealsBackToBackAndScatteredPagesInPlace) {
  world w;
  const auto data = text_bytes(256 * 1024, 9);
  std::vector<fs::page_ref> holes;
  fs::chain contiguous = to_chain(w.pool, data);  // a fresh pool: pages in address order
  fs::chain scattered = scattered_chain(w, data, fs::kPageSize, holes);
  const auto r = write_twice(w, 13, std::move(contiguous), std::move(scattered));
  EXPECT_TRUE(r.got == twice(data)) << r.got.size();
  EXPECT_TRUE(r.second.record_sealer) << r.second.record_sealer_reason;
  EXPECT_EQ(r.first.gathered, 0u);
  EXPECT_EQ(r.second.gathered, 0u);
  EXPECT_EQ(r.first.coalesced, data.size());
  EXPECT_EQ(r.second.coalesced, 2 * data.size());
  EXPECT_EQ(r.gather_copied, 0u);
}

// More, smaller slices than a record's 16 pieces: those are gathered (a counted copy) and
// still arrive byte-exact.
TEST(TlsCopies, RecordSealerGathersSlicesTooSmallAndManyForPieces) {
  world w;
  const auto data = text_bytes(64 * 1024, 10);
  std::vector<fs::page_ref> holes;
  fs::chain tiny = scattered_chain(w, data, 100, holes);
  fs::chain pages = scattered_chain(w, data, fs::kPageSize, holes);
  const auto r = write_twice(w, 13, std::move(tiny), std::move(pages));
  EXPECT_TRUE(r.got == twice(data)) << r.got.size();
  EXPECT_EQ(r.first.gathered, data.size());
  EXPECT_EQ(r.second.gathered, data.size());  // the page slices added none
  EXPECT_EQ(r.gather_copied, data.size());
}

// TLS 1.2 (OpenSSL's writer takes one span): pages back to back make records in place,
// scattered ones are gathered.
TEST(TlsCopies, OpenSslWriterGathersScatteredPages) {
  world w;
  const auto data = text_bytes(256 * 1024, 9);
  std::vector<fs::page_ref> holes;
  fs::chain contiguous = to_chain(w.pool, data);
  fs::chain scattered = scattered_chain(w, data, fs::kPageSize, holes);
  const auto r = write_twice(w, 12, std::move(contiguous), std::move(scattered));
  EXPECT_TRUE(r.got == twice(data)) << r.got.size();
  EXPECT_FALSE(r.second.record_sealer);
  EXPECT_EQ(r.first.gathered, 0u);
  EXPECT_EQ(r.first.coalesced, data.size());
  EXPECT_EQ(r.second.gathered, data.size());
}

// A write cut short for want of pages (the reader does not read yet, so none come back), then
// pages again and another write, with other bytes, longer than a record. pagewire's sealer
// (TLS 1.3) sealed nothing past what the first write reported: the second goes through.
// OpenSSL's writer (TLS 1.2) holds a record of the first write's next bytes, which it would send
// as the second write's: the second write and the shutdown fail too, and the reader gets
// exactly what the first write reported (found by tests/fuzz/run_fuzz.sh stack).
class PoolExhaustedWrite : public ::testing::TestWithParam<int> {};

TEST_P(PoolExhaustedWrite, NeverSendsTheRefusedBytesForTheNextWrite) {
  const bool sealer = GetParam() == 13;
  world w;
  fs::page_pool pool{fs::page_pool_options{.max_bytes = std::size_t{8} << 20}};  // the client's
  auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
  std::error_code ec;
  filters::tls_layer server(std::move(b), server_tls(), {}, w.pool, nullptr, ec);
  auto client = std::make_unique<filters::tls_layer>(
      std::move(a), client_tls(GetParam()), filters::tls_layer_options{}, pool, nullptr, ec);
  const auto first = random_bytes(64 * 1024, 21), second = random_bytes(40000, 22);
  fs::chain one = to_chain(w.pool, first), two = to_chain(w.pool, second);
  std::uint64_t n1 = 0;
  std::vector<std::byte> got;
  std::error_code last;
  int done = 0;
  auto read_all = [&]() -> asio::awaitable<void> {
    last = co_await recv_all(server, got);
    ++done;
  };
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await server.async_handshake(asio::use_awaitable));
      },
      asio::detached);
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        EXPECT_FALSE(co_await client->async_handshake(asio::use_awaitable));
        std::vector<fs::page_ref> ballast;  // every free page of the client's pool
        for (fs::page_ref p; (p = pool.allocate());)
          ballast.push_back(std::move(p));
        auto [e1, sent] = co_await client->write(std::move(one), asio::use_awaitable);
        n1 = sent;
        EXPECT_EQ(e1, filters::errc::pool_exhausted) << e1.message();
        EXPECT_LT(n1, first.size());
        ballast.clear();
        auto [e2, n2] = co_await client->write(std::move(two), asio::use_awaitable);
        const std::error_code e3 = co_await client->shutdown(asio::use_awaitable);
        if (sealer) {
          EXPECT_FALSE(e2) << e2.message();
          EXPECT_EQ(n2, second.size());
          EXPECT_FALSE(e3) << e3.message();
        } else {
          EXPECT_EQ(e2, filters::errc::pool_exhausted) << e2.message();
          EXPECT_EQ(n2, 0u);
          EXPECT_EQ(e3, filters::errc::pool_exhausted) << e3.message();
        }
        client.reset();  // the transport's end goes: the reader's stream ends after its bytes
        ++done;
        asio::co_spawn(w.ctx.get_executor(), read_all(), asio::detached);
      },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(done, 2);
  std::vector<std::byte> expected(first.begin(), first.begin() + static_cast<std::ptrdiff_t>(n1));
  if (sealer) {
    EXPECT_FALSE(last) << last.message();
    expected.insert(expected.end(), second.begin(), second.end());
  } else {
    EXPECT_EQ(last, filters::errc::truncated) << last.message();
  }
  EXPECT_TRUE(got == expected) << got.size() << " bytes, expected " << expected.size();
}

INSTANTIATE_TEST_SUITE_P(Versions, PoolExhaustedWrite, ::testing::Values(12, 13),
                         [](const auto& info) { return "Tls1" + std::to_string(info.param % 10); });

}  // namespace
}  // namespace pwtest
