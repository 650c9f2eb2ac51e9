// The write side content_filter and tls_layer share (filters/trip_layer.h), through both
// layers: one write at a time (a second one completes with errc::busy and the first is
// delivered whole), and a file range the layer cannot read fails the write with a clear
// error (no page cache; a file shorter than its range) instead of hanging or sending less,
// and TLS reports exactly the bytes that went out before it.

#include <pagewire/fs/file.h>
#include <pagewire/fs/page_cache.h>

#include "tests/filters/stack.h"

namespace pwtest {
namespace {

// The writing side (the TLS server) and the reading side of one stack, over the in-memory
// pair; `cache` may be null.
struct pair_of_stacks {
  std::unique_ptr<filters::stream> writer, reader;
  pair_of_stacks(world& w, const std::string& spec, fs::page_cache* cache) {
    auto [a, b] = filters::memory_transport::make_pair(w.ctx, w.pool);
    const stack_env env{&w.pool, cache, 0};
    reader = build_stack(spec, std::move(a), false, env);
    writer = build_stack(spec, std::move(b), true, env);
  }
};

class TripLayer : public ::testing::TestWithParam<std::string> {};

TEST_P(TripLayer, SecondWriteWhileOneIsInFlightCompletesBusyAndTheFirstArrivesWhole) {
  world w;
  pair_of_stacks s(w, GetParam(), &w.cache);
  const auto data = text_bytes(1u << 20);
  std::error_code first = filters::errc::busy, second;
  std::uint64_t first_bytes = 0, second_bytes = 1;
  s.writer->write(to_chain(w.pool, data), [&](std::error_code ec, std::uint64_t n) {
    first = ec;
    first_bytes = n;
    s.writer->shutdown([](std::error_code) {});
  });
  s.writer->write(to_chain(w.pool, text_bytes(100)), [&](std::error_code ec, std::uint64_t n) {
    second = ec;
    second_bytes = n;
  });
  std::vector<std::byte> got;
  std::error_code read_ec = filters::errc::busy;
  asio::co_spawn(
      w.ctx.get_executor(),
      [&]() -> asio::awaitable<void> { read_ec = co_await recv_all(*s.reader, got); },
      asio::detached);
  w.ctx.run();
  EXPECT_EQ(second, filters::errc::busy) << second.message();
  EXPECT_EQ(second_bytes, 0u);
  EXPECT_FALSE(first) << first.message();
  EXPECT_EQ(first_bytes, data.size());
  EXPECT_FALSE(read_ec) << read_ec.message();
  EXPECT_TRUE(got == data) << "reader got " << got.size() << " of " << data.size();
}

// Writes a header slice, then `range`; once the writer has shut down and the reader has seen
// the end: the write's error and count, and what the reader got.
struct body_result {
  std::error_code write_ec = filters::errc::busy;
  std::uint64_t written = 0;
  std::vector<std::byte> got;
};
constexpr char kHeader[] = "HTTP/1.1 200 OK\r\n\r\n";

body_result write_file_body(world& w, pair_of_stacks& s, fs::file_range range) {
  body_result r;
  fs::chain body;
  body.append(fs::slice::from_static(kHeader, sizeof kHeader - 1));
  body.append(std::move(range));
  s.writer->write(std::move(body), [&](std::error_code ec, std::uint64_t n) {
    r.write_ec = ec;
    r.written = n;
    s.writer->shutdown([](std::error_code) {});
  });
  asio::co_spawn(
      w.ctx.get_executor(), [&]() -> asio::awaitable<void> { co_await recv_all(*s.reader, r.got); },
      asio::detached);
  w.ctx.run();
  return r;
}

// A file of `size` text-like bytes in the test's temp dir, opened.
std::shared_ptr<const fs::file> text_file(const std::string& name, std::size_t size) {
  const auto path = tmpdir() + "/" + name;
  write_file(path, text_bytes(size));
  std::error_code ec;
  auto f = fs::file::open(path.c_str(), ec);
  EXPECT_FALSE(ec) << path << ": " << ec.message();
  return f;
}

TEST_P(TripLayer, FileRangeWithoutAPageCacheFailsTheWriteWithNoPageCache) {
  world w;
  auto f = text_file("trip_no_cache.bin", 50000);
  ASSERT_TRUE(f);
  pair_of_stacks s(w, GetParam(), nullptr);
  EXPECT_EQ(write_file_body(w, s, fs::file_range(f, 0, 50000)).write_ec,
            filters::errc::no_page_cache);
}

TEST_P(TripLayer, FileShorterThanItsRangeEndsTheWriteWithTruncated) {
  world w;
  auto f = text_file("trip_short.bin", 10000);
  ASSERT_TRUE(f);
  pair_of_stacks s(w, GetParam(), &w.cache);
  const body_result r = write_file_body(w, s, fs::file_range(f, 0, 50000));
  EXPECT_EQ(r.write_ec, filters::errc::truncated);
  // What arrives is a prefix of the header and the file's bytes. TLS reports exactly the bytes
  // whose records went out, the header's among them (sealed before the failed read).
  std::vector<std::byte> sent(reinterpret_cast<const std::byte*>(kHeader),
                              reinterpret_cast<const std::byte*>(kHeader) + sizeof kHeader - 1);
  const auto file_bytes = text_bytes(10000);
  sent.insert(sent.end(), file_bytes.begin(), file_bytes.end());
  ASSERT_LE(r.got.size(), sent.size());
  EXPECT_TRUE(std::equal(r.got.begin(), r.got.end(), sent.begin()));
  if (GetParam() == "tls") {
    EXPECT_GE(r.written, sizeof kHeader - 1);
    EXPECT_EQ(r.got.size(), r.written) << "the reader got other bytes than the write reported";
  }
}

INSTANTIATE_TEST_SUITE_P(Layers, TripLayer, ::testing::Values("gzip+plain", "tls"), stack_name);

}  // namespace
}  // namespace pwtest
