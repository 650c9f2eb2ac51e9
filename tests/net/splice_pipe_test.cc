#include <chrono>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <tuple>
#include <unistd.h>

#include <gtest/gtest.h>

#include <pagewire/fs/stats.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/splice_pipe.h>
#include <pagewire/runtime/context.h>

#include "tests/net/net_testing.h"

namespace pagewire::net {
namespace {

using namespace testing;

using recording_pipe = recording<splice_pipe>;

/// Writes `data` into `fd` from a thread, then shuts the write side.
std::thread feeder(int fd, const std::vector<char>& data) {
  return std::thread([fd, &data] {
    std::size_t off = 0;
    while (off < data.size()) {
      const ssize_t w = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += static_cast<std::size_t>(w);
    }
    ::shutdown(fd, SHUT_WR);
  });
}

/// A pair whose sending side `a` is full (small buffers, filled with bytes appended to
/// `sent`): the next send answers EAGAIN until the peer reads.
tcp_pair full_pair(std::vector<char>& sent) {
  tcp_pair p = make_pair(16 * 1024);
  const int snd = 16 * 1024;
  ::setsockopt(p.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
  const std::vector<char> filler(4096, 'f');
  for (;;) {
    const ssize_t w = ::send(p.a, filler.data(), filler.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0) break;
    sent.insert(sent.end(), filler.begin(), filler.begin() + w);
  }
  return p;
}

class splice_backends : public ::testing::TestWithParam<bool> {};

TEST_P(splice_backends, socket_to_socket_proxy_is_byte_exact) {
  runtime::context ctx(backend(GetParam()));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(5 * (1 << 20) + 17, 31);
  tcp_pair in = make_pair();   // feeder writes to in.b; the proxy reads in.a
  tcp_pair out = make_pair();  // the proxy writes out.a; the sink reads out.b
  std::thread f = feeder(in.b, data);
  sink s(out.b);
  const auto copied_before = fs::stats::copied_bytes();
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{in.a, -1}, endpoint{out.a, -1}, UINT64_MAX >> 1, false);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  f.join();
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());  // ended at the source's EOF
  EXPECT_EQ(s.bytes(), data.size());
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(fs::stats::copied_bytes() - copied_before, 0u);
  EXPECT_EQ(p.counters().splice_bytes, data.size());
  EXPECT_EQ(p.counters().splice_transfers, 1u);
}

TEST_P(splice_backends, socket_to_file_upload_is_byte_exact) {
  runtime::context ctx(backend(GetParam()));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * (1 << 20) + 5, 32);
  tcp_pair in = make_pair();
  const int fd = make_file({});
  ASSERT_GE(fd, 0);
  std::thread f = feeder(in.b, data);
  recording_pipe p(ctx, pool, opts);
  const std::int64_t at = (std::int64_t{4} << 30) + 3;  // a 64-bit file offset
  p.start(endpoint{in.a, -1}, endpoint{fd, at}, data.size(), false);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  f.join();
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());
  EXPECT_EQ(hash_of_file(fd, static_cast<std::uint64_t>(at), data.size()),
            hash_of(data.data(), data.size()));
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(backends, splice_backends, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "epoll" : "io_uring"; });

TEST(splice_pipe, prepare_read_never_reaches_past_the_current_file_size) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(10000, 33);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  recording_pipe p(ctx, pool, opts);
  sink s(out.b);
  p.start(endpoint{fd, 9000}, endpoint{out.a, -1}, 5000, false);  // asks past the end
  std::error_code ec;
  EXPECT_EQ(p.prepare_read(5000, ec), 1000u);
  EXPECT_FALSE(ec);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category()));
  EXPECT_EQ(p.bytes, 1000u);
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), 1000u);
  ::close(fd);
}

// ---- inline steps: only where they cannot sleep --------------------------------------------

struct inline_case {
  bool splice_inline;    // options::splice_inline
  bool nonblocking_dst;  // the socket has O_NONBLOCK
  bool expect_inline;    // pulls ran as splice(2) on the loop
};

class inline_steps : public ::testing::TestWithParam<inline_case> {};

TEST_P(inline_steps, cached_file_goes_inline_only_to_a_nonblocking_socket_and_stays_exact) {
  const inline_case c = GetParam();
  runtime::context ctx(backend(false));
  options opts;
  opts.splice_inline = c.splice_inline;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * (1 << 20) + 11, 34);
  const int fd = make_file(data);  // just written: every page is in the page cache
  tcp_pair out = make_pair();
  if (!c.nonblocking_dst) ::fcntl(out.a, F_SETFL, ::fcntl(out.a, F_GETFL) & ~O_NONBLOCK);
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false);
  EXPECT_FALSE(p.done);  // never completes inside start(), inline or not
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(p.counters().splice_bytes, data.size());
  if (c.expect_inline) {
    EXPECT_GT(p.counters().inline_pulls, 0u);
    EXPECT_EQ(p.counters().linked_pairs, 0u);
  } else {
    EXPECT_EQ(p.counters().inline_pulls, 0u);
    EXPECT_GT(p.counters().linked_pairs, 0u);
  }
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(paths, inline_steps,
                         ::testing::Values(inline_case{true, true, true},
                                           inline_case{true, false, false},
                                           inline_case{false, true, false}),
                         [](const auto& info) {
                           const inline_case& c = info.param;
                           if (!c.splice_inline) return std::string("inline_off");
                           return std::string(c.nonblocking_dst ? "nonblocking_socket"
                                                                : "blocking_socket");
                         });

TEST(splice_pipe, short_commits_top_the_pipe_up_and_stay_byte_exact) {
  for (bool fallback : {false, true}) {
    runtime::context ctx(backend(fallback));
    options opts;
    pipe_pool pool(opts);
    const auto data = random_bytes(4 * (1 << 20) + 4097, 36);
    const int fd = make_file(data);  // resident: pulls and commits run inline
    tcp_pair out = make_pair(16 * 1024);
    const int snd = 16 * 1024;  // far below the 1 MiB pipe: every full commit is short
    ::setsockopt(out.a, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
    sink s(out.b);
    recording_pipe p(ctx, pool, opts);
    p.start(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false);
    EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
    ::shutdown(out.a, SHUT_WR);
    EXPECT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.bytes, data.size());
    EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
    EXPECT_GT(p.counters().top_ups, 0u);
    EXPECT_EQ(p.counters().linked_pairs, 0u);
    ::close(fd);
  }
}

TEST(splice_pipe, sendfile_if_resident_takes_sendfile_for_a_cached_file_and_stays_exact) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * (1 << 20) + 5, 37);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false, true);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(p.counters().sendfile_bytes, data.size());
  EXPECT_EQ(p.counters().splice_bytes, 0u);
  EXPECT_EQ(p.counters().sendfile_transfers, 1u);
  EXPECT_EQ(p.counters().splice_transfers, 0u);
  ::close(fd);
}

// sendfile_now: transmit_op's path for a resident file range within its quantum, one
// sendfile(2) without a transfer around it.
TEST(splice_pipe, sendfile_now_sends_a_resident_range_whole_as_one_sendfile_transfer) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * 4096 + 7, 41);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  bool full = true;
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 0}, out.a, data.size(), full), data.size());
  EXPECT_FALSE(full);
  EXPECT_FALSE(p.busy());
  EXPECT_FALSE(p.done);  // no transfer, so no on_complete
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(p.counters().sendfile_bytes, data.size());
  EXPECT_EQ(p.counters().sendfile_transfers, 1u);
  ::close(fd);
}

TEST(splice_pipe, sendfile_now_leaves_a_range_past_the_end_and_a_blocking_socket_to_start_now) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(8192, 42);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  bool full = true;
  // Reaching past the file's end: nothing sent here; the transfer sends what exists and
  // reports ENODATA.
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 4096}, out.a, 8192, full), 0u);
  EXPECT_FALSE(full);
  p.start_now(endpoint{fd, 4096}, endpoint{out.a, -1}, 8192, false, true);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category()));
  EXPECT_EQ(p.bytes, 4096u);
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), 4096u);
  // A blocking socket (another descriptor: the check is kept per descriptor): sendfile(2) on
  // the loop could block it, so nothing is sent.
  tcp_pair blocking = make_pair();
  ::fcntl(blocking.a, F_SETFL, ::fcntl(blocking.a, F_GETFL) & ~O_NONBLOCK);
  sink none(blocking.b);
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 0}, blocking.a, 4096, full), 0u);
  EXPECT_FALSE(full);
  ::shutdown(blocking.a, SHUT_WR);
  EXPECT_EQ(none.bytes(), 0u);
  EXPECT_EQ(p.counters().sendfile_transfers, 1u);  // the start_now transfer's
  ::close(fd);
}

// After one range, sendfile_now answers the next ones of the same file and socket from what it
// learnt (size, residency, O_NONBLOCK) without asking again: one system call per range. What
// those caches do not cover is still asked: another socket, a range past the size it knew.
TEST(splice_pipe, sendfile_now_sends_later_ranges_on_what_it_learnt_and_asks_beyond_it) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * 4096, 45);
  const int fd = make_file(std::vector<char>(data.begin(), data.begin() + 8192));
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  bool full = true;
  ASSERT_EQ(p.sendfile_now(endpoint{fd, 0}, out.a, 4096, full), 4096u);
  auto calls = p.counters().syscalls;
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 4096}, out.a, 4096, full), 4096u);
  EXPECT_EQ(p.counters().syscalls, calls + 1);  // the sendfile alone
  // A blocking socket after the non-blocking one: refused, nothing sent.
  tcp_pair blocking = make_pair();
  ::fcntl(blocking.a, F_SETFL, ::fcntl(blocking.a, F_GETFL) & ~O_NONBLOCK);
  sink none(blocking.b);
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 0}, blocking.a, 4096, full), 0u);
  // The file grew past the size it knew: measured again, and the new bytes go.
  ASSERT_EQ(::pwrite(fd, data.data() + 8192, 4096, 8192), 4096);
  calls = p.counters().syscalls;
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 8192}, out.a, 4096, full), 4096u);
  EXPECT_GT(p.counters().syscalls, calls + 1);
  // Past the new end: nothing.
  EXPECT_EQ(p.sendfile_now(endpoint{fd, 8192}, out.a, 8192, full), 0u);
  ::shutdown(out.a, SHUT_WR);
  ::shutdown(blocking.a, SHUT_WR);
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_EQ(none.bytes(), 0u);
  ::close(fd);
}

TEST(splice_pipe, sendfile_now_on_a_full_socket_says_so_and_start_now_waits_for_room_first) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(64 * 1024, 43);
  const int fd = make_file(data);
  std::vector<char> expect;  // what the peer will read: the filler, then the range
  tcp_pair out = full_pair(expect);
  recording_pipe p(ctx, pool, opts);
  bool full = false;
  const std::uint64_t sent = p.sendfile_now(endpoint{fd, 0}, out.a, data.size(), full);
  EXPECT_TRUE(full);
  ASSERT_LT(sent, data.size());
  const auto syscalls = p.counters().syscalls;
  const auto rest = static_cast<std::int64_t>(sent);
  p.start_now(endpoint{fd, rest}, endpoint{out.a, -1}, data.size() - sent, false, true, true);
  EXPECT_EQ(p.counters().polls, 1u);           // it waits first...
  EXPECT_EQ(p.counters().syscalls, syscalls);  // ...without a call that would answer EAGAIN
  sink s(out.b);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size() - sent);
  expect.insert(expect.end(), data.begin(), data.end());
  EXPECT_EQ(s.hash(), hash_of(expect.data(), expect.size()));
  ::close(fd);
}

// splice_now: transmit_op's pipe path for a resident range of at most a chunk, two splices
// without a transfer around them when the socket takes it all.
TEST(splice_pipe, splice_now_sends_a_resident_range_whole_and_gives_the_pipe_back) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(3 * 4096 + 5, 45);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  for (int i = 0; i < 2; ++i) {  // the second reuses the first's pipe
    EXPECT_TRUE(p.splice_now(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false));
    EXPECT_FALSE(p.busy());
    EXPECT_FALSE(p.done);  // no transfer, so no on_complete
    EXPECT_EQ(pool.stats().idle, 1u);
  }
  ::shutdown(out.a, SHUT_WR);
  std::vector<char> twice(data);
  twice.insert(twice.end(), data.begin(), data.end());
  EXPECT_EQ(s.hash(), hash_of(twice.data(), twice.size()));
  EXPECT_EQ(p.counters().splice_bytes, twice.size());
  EXPECT_EQ(p.counters().splice_transfers, 2u);
  EXPECT_EQ(p.counters().inline_pulls, 2u);
  EXPECT_EQ(pool.stats().created, 1u);
  ::close(fd);
}

TEST(splice_pipe, splice_now_on_a_full_socket_becomes_a_transfer_that_waits_for_room) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(64 * 1024, 46);
  const int fd = make_file(data);
  std::vector<char> expect;  // what the peer will read: the filler, then the range
  tcp_pair out = full_pair(expect);
  recording_pipe p(ctx, pool, opts);
  EXPECT_FALSE(p.splice_now(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false));
  EXPECT_TRUE(p.busy());
  EXPECT_FALSE(p.done);
  EXPECT_EQ(p.counters().polls, 1u);  // the pulled bytes wait in the pipe for room
  sink s(out.b);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  EXPECT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(p.bytes, data.size());  // moved() includes what splice_now committed
  expect.insert(expect.end(), data.begin(), data.end());
  EXPECT_EQ(s.hash(), hash_of(expect.data(), expect.size()));
  EXPECT_EQ(p.counters().splice_bytes, data.size());
  EXPECT_EQ(p.counters().splice_transfers, 1u);
  ::close(fd);
}

// Whatever splice_now cannot do whole it hands to start_now: the transfer moves every byte
// (or reports the file's end) the way start_now would have.
struct splice_now_case {
  const char* name;
  std::uint64_t size;    // file bytes
  std::uint64_t offset;  // of the range
  std::uint64_t length;  // of the range
  std::size_t chunk;     // options::splice_chunk
  bool blocking_socket;
};
class splice_now_falls_back : public ::testing::TestWithParam<splice_now_case> {};

TEST_P(splice_now_falls_back, to_a_transfer_that_ends_as_start_now_would) {
  const splice_now_case c = GetParam();
  runtime::context ctx(backend(false));
  options opts;
  opts.splice_chunk = c.chunk;
  pipe_pool pool(opts);
  const auto data = random_bytes(c.size, 47);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  if (c.blocking_socket) ::fcntl(out.a, F_SETFL, ::fcntl(out.a, F_GETFL) & ~O_NONBLOCK);
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  EXPECT_FALSE(p.splice_now(endpoint{fd, static_cast<std::int64_t>(c.offset)}, endpoint{out.a, -1},
                            c.length, false));
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  ::shutdown(out.a, SHUT_WR);
  const std::uint64_t exist = std::min(c.length, c.size - c.offset);
  if (exist < c.length) {
    EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category()));
  } else {
    EXPECT_FALSE(p.ec) << p.ec.message();
  }
  EXPECT_EQ(p.bytes, exist);
  EXPECT_EQ(s.hash(), hash_of(data.data() + c.offset, exist));
  EXPECT_EQ(p.counters().splice_transfers, 1u);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(
    cases, splice_now_falls_back,
    ::testing::Values(splice_now_case{"past_the_end", 8192, 4096, 8192, 1 << 20, false},
                      splice_now_case{"longer_than_a_chunk", 256 * 1024, 0, 256 * 1024, 64 * 1024,
                                      false},
                      splice_now_case{"blocking_socket", 16384, 0, 16384, 1 << 20, true}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(splice_pipe, a_file_that_shrank_since_the_last_transfer_ends_with_enodata_not_a_hang) {
  runtime::context ctx(backend(false));
  options opts;
  pipe_pool pool(opts);
  const auto data = random_bytes(64 * 1024, 35);
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, 4096, true);  // remembers the size
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_FALSE(p.ec);
  ASSERT_EQ(::ftruncate(fd, 8192), 0);
  p.done = false;
  p.start(endpoint{fd, 4096}, endpoint{out.a, -1}, 16384, false);  // past the new end
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category()));
  EXPECT_EQ(p.bytes, 4096u);
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.bytes(), 8192u);
  ::close(fd);
}

// A file whose fstat size overstates what it holds (a sysfs attribute: 4096 for a few bytes)
// gives empty reads while prepare_read says bytes remain: every path ends with ENODATA after
// the bytes that exist, instead of measuring and reading again forever.
enum class sysfs_route : std::uint8_t { linked, automatic, read_send };
using sysfs_case = std::tuple<sysfs_route, bool>;
class overstated_size : public ::testing::TestWithParam<sysfs_case> {};

TEST_P(overstated_size, ends_with_enodata_after_the_bytes_that_exist) {
  const auto [route, fallback] = GetParam();
  const char* path = "/sys/devices/system/cpu/online";
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) GTEST_SKIP() << path << " is not readable here";
  char content[4096];
  const ssize_t have = ::pread(fd, content, sizeof content, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  ASSERT_GT(have, 0);
  if (st.st_size <= have) GTEST_SKIP() << path << "'s size does not overstate its content";
  runtime::context ctx(backend(fallback));
  options opts;
  opts.splice_inline = route != sysfs_route::linked;
  pipe_pool pool(opts);
  tcp_pair out = make_pair();
  if (route == sysfs_route::read_send) {
    pool.record_fallback(file_kind::of(fd, out.a), transfer_path::read_send);
  }
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, static_cast<std::uint64_t>(st.st_size), false);
  EXPECT_TRUE(run_until(
      ctx, [&] { return p.done; }, 10'000));
  p.cancel();  // a transfer still going after 10,000 handlers is the bug; stop it
  ASSERT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_EQ(p.ec, std::error_code(ENODATA, std::system_category())) << p.ec.message();
  EXPECT_EQ(p.bytes, static_cast<std::uint64_t>(have));
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.hash(), hash_of(content, static_cast<std::size_t>(have)));
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(routes, overstated_size,
                         ::testing::Combine(::testing::Values(sysfs_route::linked,
                                                              sysfs_route::automatic,
                                                              sysfs_route::read_send),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           const sysfs_route r = std::get<0>(info.param);
                           return std::string(r == sysfs_route::linked      ? "linked"
                                              : r == sysfs_route::automatic ? "automatic"
                                                                            : "read_send") +
                                  (std::get<1>(info.param) ? "_epoll" : "_io_uring");
                         });

// A transfer waiting for socket room ends with ECANCELED when something other than its own
// cancel() cancels the wait: the context shutting down (its destructor), or the owner
// cancelling every operation on the socket (context::cancel_fd, as filters' plain_transport
// and net::connection do). It used to take the cancelled poll for a wake-up and wait again:
// on io_uring shutdown gave up after 100,000 rounds with the handler never run, and on the
// epoll fallback it waited for ever.
enum class wait_route : std::uint8_t { inline_steps, linked, read_send };
enum class canceller : std::uint8_t { context_shutdown, cancel_fd };
using waiting_case = std::tuple<wait_route, bool, canceller>;
class cancelled_while_waiting : public ::testing::TestWithParam<waiting_case> {};

TEST_P(cancelled_while_waiting, completes_with_ecanceled) {
  const auto [route, fallback, by] = GetParam();
  runtime::context ctx(backend(fallback));
  options opts;
  opts.splice_inline = route == wait_route::inline_steps;
  pipe_pool pool(opts);
  const auto data = random_bytes(32 << 20, 41);  // far more than the sockets hold
  const int fd = make_file(data);
  tcp_pair out = make_pair(64 << 10);  // the peer never reads
  if (route == wait_route::read_send) {
    pool.record_fallback(file_kind::of(fd, out.a), transfer_path::read_send);
  }
  recording_pipe p(ctx, pool, opts);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false);
  // Run until the sockets are full and the transfer waits for room (its own POLL_ADD, or
  // on the fallback a splice job waiting for readiness): 300 ms.
  for (int i = 0; i < 30 && !p.done; ++i) {
    ctx.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(p.done) << p.ec.message();
  if (by == canceller::context_shutdown) {
    ctx.shutdown();
  } else {
    ctx.cancel_fd(out.a);
    for (int i = 0; i < 500 && !p.done; ++i) {  // bounded: 5 s
      ctx.poll();
      if (!p.done) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  ASSERT_TRUE(p.done);
  EXPECT_TRUE(p.ec == std::errc::operation_canceled) << p.ec.message();
  EXPECT_LT(p.bytes, data.size());
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(
    routes, cancelled_while_waiting,
    ::testing::Combine(::testing::Values(wait_route::inline_steps, wait_route::linked,
                                         wait_route::read_send),
                       ::testing::Bool(),
                       ::testing::Values(canceller::context_shutdown, canceller::cancel_fd)),
    [](const auto& info) {
      const wait_route r = std::get<0>(info.param);
      return std::string(r == wait_route::inline_steps ? "inline"
                         : r == wait_route::linked     ? "linked"
                                                       : "read_send") +
             (std::get<1>(info.param) ? "_epoll" : "_io_uring") +
             (std::get<2>(info.param) == canceller::context_shutdown ? "_context_shutdown"
                                                                     : "_cancel_fd");
    });

// A pipe smaller than splice_chunk: every commit but the range's last carries SPLICE_F_MORE
// (the flag follows the bytes the pipe took, not the chunk asked for).
TEST(splice_pipe, commits_through_a_pipe_smaller_than_the_chunk_keep_splice_f_more) {
  runtime::context ctx(backend(false));
  options opts;
  opts.splice_inline = false;  // the linked SQEs, whose flags come from prepare_write
  pipe_pool pool(opts);
  const auto data = random_bytes(16 * 65536, 38);  // one chunk (1 MiB)
  const int fd = make_file(data);
  tcp_pair out = make_pair();
  sink s(out.b);
  recording_pipe p(ctx, pool, opts);
  // The pipe the transfer takes from the pool holds 64 KiB: 16 commits.
  std::error_code ec;
  pipe_handle small = pool.acquire(ec);
  ASSERT_FALSE(ec);
  ASSERT_EQ(::fcntl(small.write_fd, F_SETPIPE_SZ, 65536), 65536);
  small.capacity = 65536;
  pool.release(small, true);
  p.start(endpoint{fd, 0}, endpoint{out.a, -1}, data.size(), false);
  EXPECT_TRUE(run_until(ctx, [&] { return p.done; }));
  EXPECT_FALSE(p.ec) << p.ec.message();
  ::shutdown(out.a, SHUT_WR);
  EXPECT_EQ(s.hash(), hash_of(data.data(), data.size()));
  EXPECT_GE(p.counters().linked_pairs, 16u);
  EXPECT_GE(p.counters().more_commits, 15u);
  ::close(fd);
}

}  // namespace
}  // namespace pagewire::net
