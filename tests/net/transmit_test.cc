#include <chrono>
#include <memory>
#include <netinet/tcp.h>
#include <string>
#include <sys/mman.h>
#include <sys/socket.h>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/transmit.h>
#include <pagewire/runtime/context.h>

#include "tests/net/net_testing.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define PW_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define PW_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define PW_POISON(p, n) ((void)(p), (void)(n))
#define PW_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace pagewire::net {
namespace {

using namespace testing;

constexpr std::uint64_t kMiB = 1 << 20;

using recording_op = recording<transmit_op>;

std::shared_ptr<const fs::file> adopt(int fd) {
  std::error_code ec;
  auto f = fs::file::adopt(fd, ec);
  EXPECT_FALSE(ec) << ec.message();
  return f;
}

fs::chain memory_chain(fs::page_pool& pool, const std::vector<char>& data) {
  fs::chain c;
  for (std::size_t off = 0; off < data.size(); off += fs::kPageSize) {
    const std::size_t n = std::min(fs::kPageSize, data.size() - off);
    fs::page_ref p = pool.allocate();
    EXPECT_TRUE(p);
    std::memcpy(p.data(), data.data() + off, n);
    c.append(fs::slice(std::move(p), 0, n));
  }
  return c;
}

struct fixture {
  explicit fixture(bool fallback = false) : ctx(backend(fallback)), pipes(opts) {
    EXPECT_FALSE(opts.validate());
  }
  /// Sends `c` on a fresh pair; returns what the peer got. `op` sees the transmit.
  std::tuple<std::error_code, std::uint64_t, digest, std::uint64_t> send(fs::chain c,
                                                                         recording_op& op) {
    tcp_pair p = make_pair();
    EXPECT_GE(p.a, 0);
    sink s(p.b);
    op.start(p.a, std::move(c));
    EXPECT_TRUE(run_until(ctx, [&] { return op.done; }));
    ::shutdown(p.a, SHUT_WR);
    return {op.ec, op.bytes, s.hash(), s.bytes()};
  }
  options opts;
  runtime::context ctx;
  pipe_pool pipes;
};

// ---- file ranges, per path ---------------------------------------------------------------

/// How a file range is routed: the pipe or sendfile by options::file_range_path (splice
/// allowed), or a recorded fallback for the file kind (sendfile, read_send).
/// `automatic`: file_range_path's default (sendfile below sendfile_below_bytes, else the pipe).
enum class route : std::uint8_t { pipe, sendfile_policy, automatic, sendfile, read_send };

using file_case = std::tuple<route, std::uint64_t, bool>;

class file_range_transmit : public ::testing::TestWithParam<file_case> {};

TEST_P(file_range_transmit, peer_receives_the_exact_bytes) {
  const auto [how, size, fallback] = GetParam();
  fixture f(fallback);
  const auto data = random_bytes(size, static_cast<std::uint32_t>(size));
  const int fd = make_file(data);  // just written: resident in the page cache
  ASSERT_GE(fd, 0);
  auto file = adopt(fd);
  tcp_pair kind_probe = make_pair();
  f.opts.file_range_path = how == route::pipe        ? options::file_path::splice
                           : how == route::automatic ? options::file_path::automatic
                                                     : options::file_path::sendfile;
  const bool small = size < f.opts.sendfile_below_bytes;
  const transfer_path path = how == route::read_send             ? transfer_path::read_send
                             : how == route::pipe                ? transfer_path::splice
                             : how == route::automatic && !small ? transfer_path::splice
                                                                 : transfer_path::sendfile;
  if (how == route::sendfile || how == route::read_send) {
    f.pipes.record_fallback(file_kind::of(fd, kind_probe.a), path);
  }
  const auto copied_before = fs::stats::copied_bytes();
  fs::chain c;
  c.append(fs::file_range(file, 0, size));
  recording_op op(f.ctx, f.opts, f.pipes);
  auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent, size);
  EXPECT_EQ(got_bytes, size);
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  const auto copied = fs::stats::copied_bytes() - copied_before;
  const send_path expect = path == transfer_path::splice     ? send_path::splice
                           : path == transfer_path::sendfile ? send_path::sendfile
                                                             : send_path::fallback;
  EXPECT_EQ(op.stats().bytes_of(expect), size);
  EXPECT_EQ(op.stats().submissions_of(expect), size > 0 ? 1u : 0u);  // one per (non-empty) range
  if (path == transfer_path::read_send) {
    EXPECT_GE(copied, size);
  } else {
    EXPECT_EQ(copied, 0u);
  }
}

std::string file_case_name(const ::testing::TestParamInfo<file_case>& info) {
  const auto [how, size, fallback] = info.param;
  const char* p = how == route::pipe              ? "splice"
                  : how == route::sendfile_policy ? "sendfile_policy"
                  : how == route::automatic       ? "automatic"
                  : how == route::sendfile        ? "sendfile"
                                                  : "read_send";
  return std::string(p) + "_" + std::to_string(size) + (fallback ? "_epoll" : "_uring");
}

constexpr std::uint64_t kSizes[] = {0, 1, 4095, 4096, 65537, kMiB + 3};

INSTANTIATE_TEST_SUITE_P(sizes, file_range_transmit,
                         ::testing::Combine(::testing::Values(route::pipe, route::sendfile_policy,
                                                              route::automatic, route::sendfile,
                                                              route::read_send),
                                            ::testing::ValuesIn(kSizes), ::testing::Bool()),
                         file_case_name);

INSTANTIATE_TEST_SUITE_P(large, file_range_transmit,
                         ::testing::Combine(::testing::Values(route::pipe, route::sendfile_policy,
                                                              route::automatic, route::sendfile,
                                                              route::read_send),
                                            ::testing::Values(64 * kMiB), ::testing::Values(false)),
                         file_case_name);

// A resident range that goes out on the loop (one sendfile, or two splices through the pipe)
// but does not fit the socket: the first calls send part of it (splice_pipe::sendfile_now /
// splice_now), the rest waits for room in a transfer; the range counts as one submission.
class partly_taken_range : public ::testing::TestWithParam<options::file_path> {};

TEST_P(partly_taken_range, continues_after_room_and_counts_once) {
  fixture f;
  f.opts.file_range_path = GetParam();
  const auto data = random_bytes(512 * 1024 + 9, 44);
  const int fd = make_file(data);
  ASSERT_GE(fd, 0);
  auto file = adopt(fd);
  tcp_pair p = make_pair(16 * 1024);
  const int snd = 16 * 1024;
  ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  fs::chain c;
  c.append(fs::file_range(file, 0, data.size()));
  recording_op op(f.ctx, f.opts, f.pipes);
  op.start(p.a, std::move(c));
  f.ctx.poll();  // the first calls fill the socket; nobody reads yet
  EXPECT_FALSE(op.done);
  EXPECT_LT(op.sent(), data.size());
  sink s(p.b);
  EXPECT_TRUE(run_until(f.ctx, [&] { return op.done; }));
  ::shutdown(p.a, SHUT_WR);
  EXPECT_FALSE(op.ec) << op.ec.message();
  EXPECT_EQ(op.bytes, data.size());
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  const send_path path =
      GetParam() == options::file_path::sendfile ? send_path::sendfile : send_path::splice;
  EXPECT_EQ(op.stats().bytes_of(path), data.size());
  EXPECT_EQ(op.stats().submissions_of(path), 1u);
}

INSTANTIATE_TEST_SUITE_P(paths, partly_taken_range,
                         ::testing::Values(options::file_path::sendfile,
                                           options::file_path::splice),
                         [](const auto& info) {
                           return std::string(
                               info.param == options::file_path::sendfile ? "sendfile" : "pipe");
                         });

class sparse_range_transmit : public ::testing::TestWithParam<transfer_path> {};

TEST_P(sparse_range_transmit, range_past_4_GiB_is_byte_exact) {
  fixture f;
  const std::uint64_t at = (std::uint64_t{4} << 30) + 12345;  // data lands past 4 GiB
  const auto data = random_bytes(kMiB, 7);
  const int fd = make_file(data, at, at + kMiB + 4096);
  ASSERT_GE(fd, 0);
  auto file = adopt(fd);
  tcp_pair probe = make_pair();
  if (GetParam() == transfer_path::splice) f.opts.file_range_path = options::file_path::splice;
  if (GetParam() != transfer_path::splice) {
    f.pipes.record_fallback(file_kind::of(fd, probe.a), GetParam());
  }
  const std::uint64_t off = at - 70000;  // a hole, then the data, then a hole
  const std::uint64_t len = 70000 + kMiB + 1000;
  const digest want = hash_of_file(fd, off, len);
  fs::chain c;
  c.append(fs::file_range(file, off, len));
  recording_op op(f.ctx, f.opts, f.pipes);
  auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got_bytes, len);
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(paths, sparse_range_transmit,
                         ::testing::Values(transfer_path::splice, transfer_path::sendfile,
                                           transfer_path::read_send));

// ---- memory: gather and SEND_ZC ----------------------------------------------------------

using memory_case = std::tuple<bool /*registered*/, std::uint64_t, bool /*fallback*/>;

class memory_transmit : public ::testing::TestWithParam<memory_case> {};

TEST_P(memory_transmit, peer_receives_the_exact_bytes) {
  const auto [registered, size, fallback] = GetParam();
  fixture f(fallback);
  fs::page_pool_options po;
  po.initial_arenas = registered ? (size / (2 * kMiB) + 1) : 0;
  po.try_huge_pages = false;
  fs::page_pool pool(po);
  bool zc_possible = false;
  if (registered && f.ctx.uses_io_uring()) {
    zc_possible = !pool.register_buffers(*f.ctx.native_ring());
  }
  f.opts.send_zc_min_bytes = 16 * 1024;
  const auto data = random_bytes(size, static_cast<std::uint32_t>(size) + 1);
  recording_op op(f.ctx, f.opts, f.pipes);
  const auto copied_before = fs::stats::copied_bytes();
  auto [ec, sent, got, got_bytes] = f.send(memory_chain(pool, data), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent, size);
  EXPECT_EQ(got_bytes, size);
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  EXPECT_EQ(fs::stats::copied_bytes() - copied_before, 0u);
  const auto& st = op.stats();
  EXPECT_EQ(st.bytes_of(send_path::gather) + st.bytes_of(send_path::send_zc), size);
  if (zc_possible && size >= f.opts.send_zc_min_bytes && f.ctx.probe().send_zc) {
    EXPECT_GE(st.submissions_of(send_path::send_zc), 1u);
    EXPECT_EQ(st.zc_notifs, st.submissions_of(send_path::send_zc));
  }
  if (!registered) {
    EXPECT_EQ(st.submissions_of(send_path::send_zc), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(sizes, memory_transmit,
                         ::testing::Combine(::testing::Bool(), ::testing::ValuesIn(kSizes),
                                            ::testing::Bool()));
INSTANTIATE_TEST_SUITE_P(large, memory_transmit,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(64 * kMiB),
                                            ::testing::Values(false)));

// ---- inline gather -----------------------------------------------------------------------

class gather_inline_transmit : public ::testing::TestWithParam<std::tuple<bool, bool>> {};

TEST_P(gather_inline_transmit, goes_out_inline_first_and_stays_byte_exact) {
  const auto [inline_on, fallback] = GetParam();
  fixture f(fallback);
  f.opts.gather_inline = inline_on;
  fs::page_pool_options po;
  po.try_huge_pages = false;
  fs::page_pool pool(po);
  const auto data = random_bytes(3 * kMiB + 123, 40);
  recording_op op(f.ctx, f.opts, f.pipes);
  auto [ec, sent, got, got_bytes] = f.send(memory_chain(pool, data), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got_bytes, data.size());
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  EXPECT_EQ(op.stats().bytes_of(send_path::gather), data.size());
  if (inline_on) {
    EXPECT_GT(op.stats().inline_sends, 0u);
  } else {
    EXPECT_EQ(op.stats().inline_sends, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(modes, gather_inline_transmit,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()));

// ---- a slow reader: every path waits for room and stays byte-exact -------------------------

class slow_reader_transmit : public ::testing::TestWithParam<std::tuple<route, bool>> {};

TEST_P(slow_reader_transmit, small_socket_buffers_and_a_trickling_reader_get_every_byte) {
  const auto [how, fallback] = GetParam();
  fixture f(fallback);
  f.opts.file_range_path =
      how == route::pipe ? options::file_path::splice : options::file_path::sendfile;
  const auto data = random_bytes(2 * kMiB + 4097, 41);
  auto file = adopt(make_file(data));
  fs::page_pool_options po;
  po.try_huge_pages = false;
  fs::page_pool pool(po);
  fs::chain c;
  if (how == route::read_send) {  // stands for memory here: a gathered message
    c = memory_chain(pool, data);
  } else {
    c.append(fs::file_range(file, 0, data.size()));
  }
  tcp_pair p = make_pair(16 * 1024);
  const int snd = 16 * 1024;
  ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  sha256 h;
  std::uint64_t got = 0;
  std::thread reader([&] {  // 4 KiB at a time, yielding between reads
    std::vector<char> buf(4096);
    for (;;) {
      const ssize_t r = ::recv(p.b, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      h.update(buf.data(), static_cast<std::size_t>(r));
      got += static_cast<std::uint64_t>(r);
      std::this_thread::yield();
    }
  });
  recording_op op(f.ctx, f.opts, f.pipes);
  op.start(p.a, std::move(c));
  EXPECT_TRUE(run_until(f.ctx, [&] { return op.done; }));
  ::shutdown(p.a, SHUT_WR);
  reader.join();
  EXPECT_FALSE(op.ec) << op.ec.message();
  EXPECT_EQ(got, data.size());
  EXPECT_EQ(h.final(), hash_of(data.data(), data.size()));
  const send_path expect = how == route::pipe              ? send_path::splice
                           : how == route::sendfile_policy ? send_path::sendfile
                                                           : send_path::gather;
  EXPECT_EQ(op.stats().bytes_of(expect), data.size());
  if (how == route::pipe) {
    EXPECT_GT(op.stats().top_ups, 0u);  // every full commit is short
  }
}

INSTANTIATE_TEST_SUITE_P(paths, slow_reader_transmit,
                         ::testing::Combine(::testing::Values(route::pipe, route::sendfile_policy,
                                                              route::read_send),
                                            ::testing::Bool()));

// ---- fairness: two transmits on one context interleave by the quantum -----------------------

class fair_transmit : public ::testing::TestWithParam<std::tuple<route, bool>> {};

TEST_P(fair_transmit, two_large_transmits_on_one_context_interleave_by_the_quantum) {
  const auto [how, fallback] = GetParam();
  fixture f(fallback);
  f.opts.transfer_quantum = 64 * 1024;
  f.opts.splice_chunk = 64 * 1024;
  f.opts.file_range_path =
      how == route::pipe ? options::file_path::splice : options::file_path::sendfile;
  ASSERT_FALSE(f.opts.validate());
  const std::uint64_t size = 2 * kMiB;
  const auto data = random_bytes(size, 42);
  auto file = adopt(make_file(data));
  fs::page_pool_options po;
  po.try_huge_pages = false;
  fs::page_pool pool(po);
  auto message = [&] {
    fs::chain c;
    if (how == route::read_send) return memory_chain(pool, data);  // memory: gather
    c.append(fs::file_range(file, 0, size));
    return c;
  };
  // Socket buffers that hold both messages whole: only the quantum can make them take turns.
  const int big = 8 << 20;
  tcp_pair p1 = make_pair(big), p2 = make_pair(big);
  for (int fd : {p1.a, p2.a})
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  sink s1(p1.b), s2(p2.b);
  recording_op a(f.ctx, f.opts, f.pipes), b(f.ctx, f.opts, f.pipes);
  std::uint64_t other_at_first_done = 0;
  bool first_seen = false;
  a.start(p1.a, message());
  b.start(p2.a, message());
  EXPECT_TRUE(run_until(f.ctx, [&] {
    if (!first_seen && (a.done || b.done)) {
      first_seen = true;
      other_at_first_done = a.done ? b.sent() : a.sent();
    }
    return a.done && b.done;
  }));
  ::shutdown(p1.a, SHUT_WR);
  ::shutdown(p2.a, SHUT_WR);
  EXPECT_FALSE(a.ec);
  EXPECT_FALSE(b.ec);
  EXPECT_EQ(s1.hash(), hash_of(data.data(), size));
  EXPECT_EQ(s2.hash(), hash_of(data.data(), size));
  // When the first finished, the other had moved more than a quantum (they took turns).
  EXPECT_GT(other_at_first_done, f.opts.transfer_quantum)
      << a.stats().yields << " " << b.stats().yields << " " << a.sent() << " " << b.sent();
  EXPECT_GT(a.stats().yields, 0u);
  EXPECT_GT(b.stats().yields, 0u);
}

INSTANTIATE_TEST_SUITE_P(paths, fair_transmit,
                         ::testing::Combine(::testing::Values(route::pipe, route::sendfile_policy,
                                                              route::read_send),
                                            ::testing::Bool()));

// ---- the send-progress clock ----------------------------------------------------------------

class progress_clock_transmit : public ::testing::TestWithParam<std::tuple<route, bool>> {};

// A transmit that completes without waiting reads no clock, so the next one must not report
// the previous one's stamp: before its first wait last_progress() is now, and a transmit that
// waits on a full socket was stamped at or after its start (the send timeout counts from it).
TEST_P(progress_clock_transmit, last_progress_belongs_to_the_current_transmit) {
  const auto [how, fallback] = GetParam();
  fixture f(fallback);
  f.opts.file_range_path =
      how == route::pipe ? options::file_path::splice : options::file_path::sendfile;
  const auto data = random_bytes(kMiB, 43);
  auto file = adopt(make_file(data));
  fs::page_pool_options po;
  po.try_huge_pages = false;
  fs::page_pool pool(po);
  auto message = [&](std::uint64_t n) {
    if (how == route::read_send) {  // memory: gather
      return memory_chain(pool, std::vector<char>(data.begin(), data.begin() + n));
    }
    fs::chain c;
    c.append(fs::file_range(file, 0, n));
    return c;
  };
  tcp_pair p = make_pair(16 * 1024);  // nobody reads until the end: the socket fills
  const int snd = 16 * 1024;
  ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  recording_op op(f.ctx, f.opts, f.pipes);
  op.start(p.a, message(1024));  // fits: completes without a wait
  ASSERT_TRUE(run_until(f.ctx, [&] { return op.done; }));
  ASSERT_FALSE(op.ec) << op.ec.message();

  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // CLOCK_MONOTONIC_COARSE lags steady_clock by up to a tick (HZ=100: 10 ms).
  const auto slack = std::chrono::milliseconds(15);
  const auto started = transmit_op::clock::now();
  op.done = false;
  op.start(p.a, message(data.size()));
  EXPECT_GE(op.last_progress() + slack, started);  // not waited yet: now
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (op.sent() == 0 && std::chrono::steady_clock::now() < give_up) {
    f.ctx.poll();
  }
  for (int i = 0; i < 100; ++i)
    f.ctx.poll();  // whatever still fits goes; then it waits for room
  ASSERT_FALSE(op.done) << "the socket took 1 MiB: nothing waited";
  EXPECT_GT(op.sent(), 0u);
  EXPECT_GE(op.last_progress() + slack, started);
  EXPECT_LE(op.last_progress(), transmit_op::clock::now());

  sink s(p.b);
  EXPECT_TRUE(run_until(f.ctx, [&] { return op.done; }));
  ::shutdown(p.a, SHUT_WR);
  EXPECT_FALSE(op.ec) << op.ec.message();
  EXPECT_EQ(s.bytes(), 1024 + data.size());
}

INSTANTIATE_TEST_SUITE_P(paths, progress_clock_transmit,
                         ::testing::Combine(::testing::Values(route::pipe, route::sendfile_policy,
                                                              route::read_send),
                                            ::testing::Bool()));

// ---- one message: header + file + trailer ------------------------------------------------

TEST(transmit, header_file_trailer_arrive_as_one_message_with_more_on_all_but_the_last) {
  for (bool fallback : {false, true}) {
    fixture f(fallback);
    static const char header[] = "HTTP/1.1 200 OK\r\nContent-Length: 100003\r\n\r\n";
    static const char trailer[] = "\r\n0\r\n\r\n";
    const auto body = random_bytes(100003, 3);
    const int fd = make_file(body);
    auto file = adopt(fd);
    fs::chain c;
    c.append(fs::slice::from_static(header, sizeof header - 1));
    c.append(fs::file_range(file, 0, body.size()));
    c.append(fs::slice::from_static(trailer, sizeof trailer - 1));
    std::string want(header, sizeof header - 1);
    want.append(body.data(), body.size());
    want.append(trailer, sizeof trailer - 1);
    recording_op op(f.ctx, f.opts, f.pipes);
    auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
    EXPECT_FALSE(ec);
    EXPECT_EQ(got_bytes, want.size());
    EXPECT_EQ(got, hash_of(want.data(), want.size()));
    // Header and file carry MORE; the trailer (the end of the message) does not.
    EXPECT_EQ(op.stats().more_flagged, 2u);
    EXPECT_EQ(op.stats().submissions_of(send_path::gather), 2u);
  }
}

// What a run of chains cost on the wire: TCP segments, and submissions flagged MORE.
struct sent_segments {
  std::uint32_t segments = 0;
  std::uint64_t more_flagged = 0;
};

// Sends `chains` on a fresh pair whose sender has TCP_NODELAY, one transmit after another (one
// op, each chain with its flags). The peer gets them all.
sent_segments segments_for(fixture& f, std::vector<std::pair<fs::chain, send_flags>> chains) {
  tcp_pair p = make_pair();
  const int one = 1;
  ::setsockopt(p.a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sink s(p.b);
  const std::uint32_t before = segs_out(p.a);
  std::uint64_t bytes = 0;
  recording_op op(f.ctx, f.opts, f.pipes);
  for (auto& [chain, flags] : chains) {
    bytes += chain.size();
    op.done = false;
    op.start(p.a, std::move(chain), flags);
    EXPECT_TRUE(run_until(f.ctx, [&] { return op.done; }));
    EXPECT_FALSE(op.ec);
  }
  const sent_segments sent{segs_out(p.a) - before, op.stats().more_flagged};
  ::shutdown(p.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), bytes);
  return sent;
}

TEST(transmit, msg_more_coalesces_header_and_body_into_fewer_segments) {
  fixture f;
  static char header[200];
  std::memset(header, 'h', sizeof header);
  const auto body = random_bytes(1000, 4);
  auto file = adopt(make_file(body));
  std::vector<std::pair<fs::chain, send_flags>> one;  // header and file in one message
  one.emplace_back().first.append(fs::slice::from_static(header, sizeof header));
  one.back().first.append(fs::file_range(file, 0, body.size()));
  const auto with_more = segments_for(f, std::move(one)).segments;
  std::vector<std::pair<fs::chain, send_flags>> two;  // two messages: each ends without MORE
  two.emplace_back().first.append(fs::slice::from_static(header, sizeof header));
  two.emplace_back().first.append(fs::file_range(file, 0, body.size()));
  const auto without = segments_for(f, std::move(two)).segments;
  EXPECT_LT(with_more, without);
}

// A message sent as several chains: send_flags::more on all but the last lets each chain's
// tail wait for the next one (MSG_MORE / SPLICE_F_MORE on its last submission too), so the
// peer gets the whole message in as few segments as one chain would take. The file range goes
// through the pipe: sendfile(2) takes no flags and pushes its tail (transmit.h).
TEST(transmit, send_flags_more_lets_the_next_chain_fill_the_segment_left_open) {
  fixture f;
  f.opts.file_range_path = options::file_path::splice;
  static char header[200];
  std::memset(header, 'h', sizeof header);
  static const char trailer[] = "\r\n0\r\n\r\n";
  const auto body = random_bytes(1000, 5);
  auto file = adopt(make_file(body));
  // The message as three chains (memory, file, memory), each started when the last is done.
  auto segments = [&](send_flags first_two) {
    std::vector<std::pair<fs::chain, send_flags>> parts(3);
    parts[0].first.append(fs::slice::from_static(header, sizeof header));
    parts[1].first.append(fs::file_range(file, 0, body.size()));
    parts[2].first.append(fs::slice::from_static(trailer, sizeof trailer - 1));
    parts[0].second = parts[1].second = first_two;
    return segments_for(f, std::move(parts));
  };
  const sent_segments with_more = segments(send_flags::more);
  const sent_segments without = segments(send_flags::none);
  EXPECT_EQ(with_more.segments, 1u) << "1,203 bytes fit one segment";
  EXPECT_EQ(without.segments, 3u);
  EXPECT_EQ(with_more.more_flagged, 2u);
  EXPECT_EQ(without.more_flagged, 0u);
}

// ---- SEND_ZC lifetime --------------------------------------------------------------------

class poisoning_op : public recording_op {
 public:
  using recording_op::recording_op;
  std::uint64_t released_before_notif = 0;
  std::uint64_t released = 0;
  std::vector<std::pair<const std::byte*, std::size_t>> poisoned;

 protected:
  void on_released(const fs::segment& s) override {
    const fs::slice& sl = std::get<fs::slice>(s);
    ++released;
    if (stats().zc_notifs == 0) ++released_before_notif;  // the tests below send one run
    // Scribble, then poison: a late kernel or user-space read of this memory shows up as
    // corrupt bytes at the peer or an ASan report.
    std::memset(const_cast<std::byte*>(sl.data()), 0xdb, sl.size());
    PW_POISON(sl.data(), sl.size());
    poisoned.emplace_back(sl.data(), sl.size());
  }
};

// A one-arena pool registered on f's ring; f's runs of 4 KiB and more then go by SEND_ZC.
// Null (and a test failure) when the kernel refuses the registration.
std::unique_ptr<fs::page_pool> zc_pool(fixture& f) {
  fs::page_pool_options po;
  po.initial_arenas = 1;
  po.try_huge_pages = false;
  auto pool = std::make_unique<fs::page_pool>(po);
  if (auto ec = pool->register_buffers(*f.ctx.native_ring())) {
    ADD_FAILURE() << "register_buffers: " << ec.message();
    return nullptr;
  }
  f.opts.send_zc_min_bytes = 4096;
  return pool;
}

TEST(transmit, send_zc_buffers_are_released_only_after_the_notification) {
  fixture f;
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  auto pool = zc_pool(f);
  ASSERT_TRUE(pool);
  const auto data = random_bytes(256 * 1024, 9);
  poisoning_op op(f.ctx, f.opts, f.pipes);
  auto [ec, sent, got, got_bytes] = f.send(memory_chain(*pool, data), op);
  EXPECT_FALSE(ec);
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  EXPECT_GE(op.stats().submissions_of(send_path::send_zc), 1u);
  EXPECT_EQ(op.released, data.size() / fs::kPageSize);
  EXPECT_EQ(op.released_before_notif, 0u);
  for (auto [p, n] : op.poisoned)
    PW_UNPOISON(p, n);
}

class release_recording_op : public recording_op {
 public:
  using recording_op::recording_op;
  std::vector<std::uint64_t> sent_at_release;  // sent() at each memory segment's release

 protected:
  void on_released(const fs::segment& s) override {
    if (fs::is_memory(s)) sent_at_release.push_back(sent());
  }
};

// One part of a message: bytes in pool pages, or in a file sent as a file range.
struct part {
  bool in_file;
  std::vector<char> bytes;
};

// Sends `parts` in order as one message through `op` on f's ring, and checks that the peer
// got exactly their bytes. Returns how many that is.
std::uint64_t send_parts(fixture& f, fs::page_pool& pool, const std::vector<part>& parts,
                         recording_op& op) {
  fs::chain c;
  std::vector<char> all;
  for (const part& p : parts) {
    if (p.in_file) {
      c.append(fs::file_range(adopt(make_file(p.bytes)), 0, p.bytes.size()));
    } else {
      c.append(memory_chain(pool, p.bytes));
    }
    all.insert(all.end(), p.bytes.begin(), p.bytes.end());
  }
  auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(sent, all.size());
  EXPECT_EQ(got_bytes, all.size());
  EXPECT_EQ(got, hash_of(all.data(), all.size()));
  return all.size();
}

// A run sent with MSG_MORE keeps its sub-MSS tail corked until the next send: had the
// transmit waited for the run's notification before sending on, the tail (and the
// notification) would wait for the kernel's cork timer. It goes on at the run's send result;
// the run's pages are released at its notification, after the rest of the message went out,
// and the transmit completes after that.
TEST(transmit, a_send_zc_run_sent_with_more_does_not_hold_the_rest_of_the_message) {
  fixture f;
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  auto pool = zc_pool(f);
  ASSERT_TRUE(pool);
  const std::size_t head = 64 * 1024;
  release_recording_op op(f.ctx, f.opts, f.pipes);
  const std::uint64_t total = send_parts(
      f, *pool, {{false, random_bytes(head, 13)}, {true, random_bytes(256 * 1024, 14)}}, op);
  ASSERT_EQ(op.stats().submissions_of(send_path::send_zc), 1u);
  EXPECT_EQ(op.stats().bytes_of(send_path::send_zc), head);
  EXPECT_EQ(op.stats().zc_notifs, 1u);  // completed after the notification
  ASSERT_EQ(op.sent_at_release.size(), head / fs::kPageSize);
  for (std::uint64_t at : op.sent_at_release)
    EXPECT_EQ(at, total);  // released after the file range went out
}

// Two SEND_ZC runs around a file range: the first may still wait for its notification
// while the second is sent. Every page is released once, each run's notification counted,
// and the bytes arrive in order.
TEST(transmit, send_zc_runs_of_one_message_can_wait_for_their_notifications_together) {
  fixture f;
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  auto pool = zc_pool(f);
  ASSERT_TRUE(pool);
  const std::size_t run = 64 * 1024;
  release_recording_op op(f.ctx, f.opts, f.pipes);
  send_parts(f, *pool,
             {{false, random_bytes(run, 15)},
              {true, random_bytes(128 * 1024, 16)},
              {false, random_bytes(run, 17)}},
             op);
  const transmit_stats st = op.stats();
  EXPECT_GE(st.submissions_of(send_path::send_zc), 1u);  // the second may go by gather
  EXPECT_EQ(st.zc_notifs, st.submissions_of(send_path::send_zc));
  EXPECT_EQ(st.bytes_of(send_path::send_zc) + st.bytes_of(send_path::gather), 2 * run);
  EXPECT_EQ(op.sent_at_release.size(), 2 * run / fs::kPageSize);
}

TEST(transmit, kernel_reported_copy_switches_the_connection_to_plain_sends) {
  fixture f;
  if (!f.ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  auto pool = zc_pool(f);
  ASSERT_TRUE(pool);
  const auto data = random_bytes(64 * 1024, 10);
  recording_op op(f.ctx, f.opts, f.pipes);
  tcp_pair p = make_pair();
  sink s(p.b);
  for (int i = 0; i < 3; ++i) {  // loopback: the kernel copies and says so
    op.done = false;
    op.start(p.a, memory_chain(*pool, data));
    ASSERT_TRUE(run_until(f.ctx, [&] { return op.done; }));
    EXPECT_FALSE(op.ec);
  }
  ::shutdown(p.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), 3 * data.size());
  if (op.stats().zc_copied > 0) {
    EXPECT_FALSE(op.send_zc_enabled());
    EXPECT_EQ(op.stats().submissions_of(send_path::send_zc), op.stats().zc_copied);
    EXPECT_GE(op.stats().submissions_of(send_path::gather), 1u);
  }
}

// ---- errors and fallbacks ----------------------------------------------------------------

TEST(transmit, file_truncated_mid_transmit_ends_with_an_error_after_the_bytes_that_exist) {
  fixture f;
  const std::uint64_t size = 16 * kMiB;
  const auto data = random_bytes(size, 11);
  const std::string path = temp_path("trunc");
  {
    int w = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_EQ(::write(w, data.data(), data.size()), static_cast<ssize_t>(size));
    ::close(w);
  }
  std::error_code oec;
  auto file = fs::file::open(path.c_str(), oec);
  ASSERT_FALSE(oec);
  tcp_pair p = make_pair(64 * 1024);
  // Receive the first MiB, truncate the file to 2 MiB, then drain.
  std::uint64_t got = 0;
  std::thread reader([&] {
    std::vector<char> buf(64 * 1024);
    bool truncated = false;
    for (;;) {
      const ssize_t r = ::recv(p.b, buf.data(), buf.size(), 0);
      if (r <= 0) break;
      got += static_cast<std::uint64_t>(r);
      if (!truncated && got >= kMiB) {
        truncated = ::truncate(path.c_str(), 2 * kMiB) == 0;
      }
    }
  });
  fs::chain c;
  c.append(fs::file_range(file, 0, size));
  recording_op op(f.ctx, f.opts, f.pipes);
  op.start(p.a, std::move(c));
  EXPECT_TRUE(run_until(
      f.ctx, [&] { return op.done; }, 100'000));
  ::shutdown(p.a, SHUT_WR);
  reader.join();
  ::unlink(path.c_str());
  EXPECT_EQ(op.ec, std::error_code(ENODATA, std::system_category()));
  EXPECT_LT(op.bytes, size);
  EXPECT_GE(op.bytes, 2 * kMiB);  // everything that existed went out
  EXPECT_EQ(got, op.bytes);
}

TEST(transmit, splice_einval_falls_back_to_sendfile_and_stays_byte_exact) {
  if (!runtime::faults_enabled()) GTEST_SKIP() << "fault injection compiled out";
  fixture f;
  f.opts.splice_inline = false;  // faults are injected into SPLICE SQEs
  const auto data = random_bytes(3 * kMiB + 5, 12);
  auto file = adopt(make_file(data));
  f.ctx.faults().add(runtime::fault_rule::fail_nth(IORING_OP_SPLICE, 1, EINVAL));
  fs::chain c;
  c.append(fs::file_range(file, 0, data.size()));
  recording_op op(f.ctx, f.opts, f.pipes);
  auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  EXPECT_EQ(op.stats().bytes_of(send_path::sendfile), data.size());
  EXPECT_EQ(op.stats().submissions_of(send_path::sendfile), 1u);
  EXPECT_EQ(op.stats().submissions_of(send_path::splice), 0u);  // the refused pull moved nothing
  EXPECT_TRUE(f.pipes.has_fallbacks());
  // The decision sticks for the kind: the next transmit goes straight to sendfile.
  fs::chain again;
  again.append(fs::file_range(file, 0, data.size()));
  recording_op op2(f.ctx, f.opts, f.pipes);
  auto [ec2, sent2, got2, got_bytes2] = f.send(std::move(again), op2);
  EXPECT_FALSE(ec2);
  EXPECT_EQ(got2, hash_of(data.data(), data.size()));
  EXPECT_EQ(op2.stats().bytes_of(send_path::splice), 0u);
}

TEST(transmit, splice_einval_on_the_commit_drains_the_pipe_through_user_memory) {
  if (!runtime::faults_enabled()) GTEST_SKIP() << "fault injection compiled out";
  fixture f;
  f.opts.splice_inline = false;  // faults are injected into SPLICE SQEs
  const auto data = random_bytes(2 * kMiB + 77, 13);
  auto file = adopt(make_file(data));
  f.ctx.faults().add(runtime::fault_rule::fail_nth(IORING_OP_SPLICE, 2, EINVAL));
  fs::chain c;
  c.append(fs::file_range(file, 0, data.size()));
  recording_op op(f.ctx, f.opts, f.pipes);
  const auto copied_before = fs::stats::copied_bytes();
  auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(got, hash_of(data.data(), data.size()));
  EXPECT_GT(fs::stats::copied_bytes() - copied_before, 0u);
  EXPECT_GT(op.stats().bytes_of(send_path::fallback), 0u);
  EXPECT_EQ(op.stats().submissions_of(send_path::fallback), 1u);
}

TEST(transmit, file_range_counters_add_up_over_every_transmit_of_one_op) {
  fixture f;
  f.opts.file_range_path = options::file_path::splice;
  const auto a = random_bytes(40'000, 15);
  const auto b = random_bytes(70'000, 16);
  auto fa = adopt(make_file(a));
  auto fb = adopt(make_file(b));
  recording_op op(f.ctx, f.opts, f.pipes);
  for (int round = 1; round <= 3; ++round) {
    fs::chain c;
    c.append(fs::file_range(fa, 0, a.size()));
    c.append(fs::file_range(fb, 0, b.size()));
    op.done = false;
    auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(got_bytes, a.size() + b.size());
    const transmit_stats st = op.stats();
    EXPECT_EQ(st.transmits, static_cast<std::uint64_t>(round));
    EXPECT_EQ(st.submissions_of(send_path::splice), 2u * round);  // one per range
    EXPECT_EQ(st.bytes_of(send_path::splice), (a.size() + b.size()) * round);
    EXPECT_EQ(st.bytes_of(send_path::sendfile), 0u);
  }
}

TEST(transmit, splice_eagain_waits_and_reissues_byte_exact) {
  if (!runtime::faults_enabled()) GTEST_SKIP() << "fault injection compiled out";
  for (std::uint64_t nth : {1, 2, 3}) {
    fixture f;
    f.opts.splice_inline = false;  // faults are injected into SPLICE SQEs
    const auto data = random_bytes(3 * kMiB + 1, 14);
    auto file = adopt(make_file(data));
    f.ctx.faults().add(runtime::fault_rule::fail_nth(IORING_OP_SPLICE, nth, EAGAIN));
    fs::chain c;
    c.append(fs::file_range(file, 0, data.size()));
    recording_op op(f.ctx, f.opts, f.pipes);
    auto [ec, sent, got, got_bytes] = f.send(std::move(c), op);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(got, hash_of(data.data(), data.size()));
    EXPECT_EQ(op.stats().bytes_of(send_path::splice), data.size());
    EXPECT_FALSE(f.pipes.has_fallbacks());
  }
}

}  // namespace
}  // namespace pagewire::net
