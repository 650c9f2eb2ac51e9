#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/stats.h>

#include "tests/fs/temp_files.h"

namespace pagewire::fs {
namespace {

static_assert(asio::is_const_buffer_sequence<chain>::value);

// Reads every byte a chain describes (test-side only: pread for file ranges).
std::string flatten(const chain& c) {
  std::string out;
  for (const segment& s : c.segments()) {
    if (is_memory(s)) {
      const slice& m = std::get<slice>(s);
      out.append(reinterpret_cast<const char*>(m.data()), m.size());
    } else {
      const file_range& r = std::get<file_range>(s);
      auto bytes = testing::pread_all(r.fd(), r.offset(), r.size());
      out.append(bytes.data(), bytes.size());
    }
  }
  return out;
}

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::temp_path("chain");
    data_ = testing::random_bytes(3 * kPageSize + 123, 42);
    ASSERT_TRUE(testing::write_file(path_, data_));
    std::error_code ec;
    file_ = file::open(path_.c_str(), ec);
    ASSERT_TRUE(file_) << ec.message();
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  slice text(const std::string& s) {
    page_ref p = pool_.allocate();
    std::memcpy(p.data(), s.data(), s.size());
    return slice(std::move(p), 0, s.size());
  }

  // header slice, file range, static CRLF, file range of another part, body slice
  chain mixed() {
    static const char kCrlf[] = "\r\n";
    chain c;
    c.append(text("HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\n"));
    c.append(file_range(file_, 100, 5000));
    c.append(slice::from_static(kCrlf, 2));
    c.append(file_range(file_, 9000, 1000));
    c.append(text("trailer-bytes"));
    return c;
  }

  page_pool pool_;
  std::string path_;
  std::vector<char> data_;
  std::shared_ptr<const file> file_;
};

TEST_F(ChainTest, SizeIsTheSumOfSegmentsWhicheverKind) {
  chain c = mixed();
  EXPECT_EQ(c.segment_count(), 5u);
  EXPECT_EQ(c.size(), 41u + 5000u + 2u + 1000u + 13u);
  EXPECT_FALSE(c.all_memory());
  EXPECT_EQ(flatten(c).size(), c.size());
}

TEST_F(ChainTest, OneSegmentChainHoldsThatSegmentAndNothingWhenItIsEmpty) {
  const chain of_range(file_range(file_, 100, 5000));
  EXPECT_EQ(of_range.segment_count(), 1u);
  EXPECT_EQ(flatten(of_range), std::string(data_.data() + 100, 5000));
  const chain of_slice(text("abc"));
  EXPECT_EQ(of_slice.segment_count(), 1u);
  EXPECT_TRUE(of_slice.all_memory());
  EXPECT_EQ(flatten(of_slice), "abc");
  EXPECT_TRUE(chain(file_range(file_, 7, 0)).empty());
  EXPECT_EQ(chain(file_range(file_, 7, 0)).segment_count(), 0u);
}

TEST_F(ChainTest, SplitAtEveryByteBoundaryPartitionsTheBytes) {
  const chain whole = mixed();
  const std::string all = flatten(whole);
  std::uint64_t copied = stats::copied_bytes();
  for (std::uint64_t n = 0; n <= whole.size(); ++n) {
    chain rest = whole;
    chain front = rest.split(n);
    ASSERT_EQ(front.size(), n);
    ASSERT_EQ(rest.size(), whole.size() - n);
    ASSERT_EQ(flatten(front) + flatten(rest), all) << "split at " << n;
  }
  EXPECT_EQ(stats::copied_bytes(), copied);
  EXPECT_EQ(flatten(whole), all);  // copies shared, the original is untouched
}

TEST_F(ChainTest, ConsumeAtEveryByteBoundaryLeavesTheUnsentTail) {
  const chain whole = mixed();
  const std::string all = flatten(whole);
  for (std::uint64_t n = 0; n <= whole.size(); ++n) {
    chain c = whole;
    ASSERT_EQ(c.consume(n), n);
    ASSERT_EQ(c.size(), whole.size() - n);
    ASSERT_EQ(flatten(c), all.substr(n)) << "consume " << n;
  }
  chain c = whole;
  EXPECT_EQ(c.consume(whole.size() + 10), whole.size());
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.segment_count(), 0u);
}

TEST_F(ChainTest, ConsumeInSmallStepsReleasesPagesAsItGoes) {
  chain c = mixed();
  EXPECT_EQ(pool_.stats().pages_in_use, 2u);
  c.consume(41);
  EXPECT_EQ(pool_.stats().pages_in_use, 1u);
  while (!c.empty())
    c.consume(7);
  EXPECT_EQ(pool_.stats().pages_in_use, 0u);
}

TEST_F(ChainTest, ReserveKeepsSegmentStorageInPlaceForThatManyAppends) {
  chain c;
  c.reserve(20);
  c.append(text("head"));
  const segment* storage = c.segments().data();
  for (std::uint64_t i = 0; i < 19; ++i)
    c.append(file_range(file_, i * 2, 1));  // not adjacent: 19 more segments
  EXPECT_EQ(c.segment_count(), 20u);
  EXPECT_EQ(c.segments().data(), storage);  // no regrowth
}

TEST_F(ChainTest, ReserveOnAPartlyConsumedChainKeepsItsBytes) {
  chain c = mixed();
  const std::string all = flatten(c);
  c.consume(41 + 5000);  // two whole segments gone from the front
  c.reserve(64);
  EXPECT_EQ(c.segment_count(), 3u);
  EXPECT_EQ(flatten(c), all.substr(41 + 5000));
  const segment* storage = c.segments().data();
  for (std::uint64_t i = 0; i < 61; ++i)
    c.append(file_range(file_, i * 2, 1));
  EXPECT_EQ(c.segments().data(), storage);
}

TEST_F(ChainTest, ReserveForFewerThanFourSegmentsIsKeptByTheFirstAppends) {
  chain c;
  c.reserve(2);
  const segment* storage = c.segments().data();
  c.append(file_range(file_, 0, 1));
  c.append(file_range(file_, 2, 1));
  EXPECT_EQ(c.segment_count(), 2u);
  EXPECT_EQ(c.segments().data(), storage);  // no second allocation
}

TEST_F(ChainTest, ReservedEmptyChainKeepsItsStorageWhenAChainIsAppended) {
  chain c;
  c.reserve(8);
  const segment* storage = c.segments().data();
  chain body;
  for (std::uint64_t i = 0; i < 3; ++i)
    body.append(file_range(file_, i * 2, 1));
  c.append(std::move(body));
  EXPECT_EQ(c.segment_count(), 3u);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(body.empty());
  for (std::uint64_t i = 3; i < 8; ++i)
    c.append(file_range(file_, i * 2, 1));
  EXPECT_EQ(c.segments().data(), storage);  // the reserved room was used, not replaced
}

TEST_F(ChainTest, SwapExchangesSegmentsAndStorageOfTwoChains) {
  chain a = mixed();
  const std::string all = flatten(a);
  a.consume(41);  // a consumed front travels too
  chain b;
  b.reserve(8);
  const segment* a_storage = a.segments().data();
  const segment* b_storage = b.segments().data();
  a.swap(b);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.segment_count(), 0u);
  EXPECT_EQ(b.size(), all.size() - 41);
  EXPECT_EQ(b.segment_count(), 4u);
  EXPECT_FALSE(b.all_memory());
  EXPECT_EQ(flatten(b), all.substr(41));
  EXPECT_EQ(b.segments().data(), a_storage);
  for (std::uint64_t i = 0; i < 8; ++i)
    a.append(file_range(file_, i * 2, 1));
  EXPECT_EQ(a.segments().data(), b_storage);  // a got b's reserved room
  EXPECT_FALSE(a.all_memory());
  swap(a, b);
  EXPECT_EQ(a.size(), all.size() - 41);
  EXPECT_EQ(b.size(), 8u);
}

TEST_F(ChainTest, AdjacentNeighboursMerge) {
  chain c;
  slice s = text(std::string(300, 'a'));
  c.append(s.share(0, 100));
  c.append(s.share(100, 100));  // adjacent on the same page
  EXPECT_EQ(c.segment_count(), 1u);
  c.append(s.share(250, 50));  // gap
  EXPECT_EQ(c.segment_count(), 2u);
  c.append(file_range(file_, 0, 10));
  c.append(file_range(file_, 10, 20));  // contiguous in the same file
  EXPECT_EQ(c.segment_count(), 3u);
  c.append(file_range(file_, 40, 20));
  EXPECT_EQ(c.segment_count(), 4u);
  c.prepend(s.share(50, 50));
  EXPECT_EQ(c.segment_count(), 5u);
  c.prepend(s.share(0, 50));  // adjacent to the new front
  EXPECT_EQ(c.segment_count(), 5u);
  EXPECT_EQ(c.size(), 100u + 100u + 50u + 30u + 20u + 50u + 50u);
}

TEST_F(ChainTest, PrependPutsHeadersInFront) {
  chain c;
  c.append(file_range(file_, 0, 64));
  c.prepend(text("head"));
  EXPECT_EQ(flatten(c), "head" + std::string(data_.begin(), data_.begin() + 64));
  c.consume(2);
  c.prepend(text("XY"));
  EXPECT_EQ(flatten(c).substr(0, 4), "XYad");
}

TEST_F(ChainTest, AppendChainMovesSegmentsAndMergesAtTheSeam) {
  chain a;
  a.append(file_range(file_, 0, 10));
  chain b;
  b.append(file_range(file_, 10, 10));
  b.append(text("x"));
  a.append(std::move(b));
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(a.segment_count(), 2u);
  EXPECT_EQ(a.size(), 21u);
}

TEST_F(ChainTest, IovecViewCoversARunOfMemorySegments) {
  chain c = mixed();
  iovec iov[8];
  EXPECT_EQ(c.iovecs(iov, 0), 1u);
  EXPECT_EQ(iov[0].iov_len, 41u);
  EXPECT_EQ(c.iovecs(iov, 1), 0u);  // a file range starts there
  EXPECT_EQ(c.iovecs(iov, 2), 1u);
  EXPECT_EQ(c.iovecs(std::span<iovec>(iov, 0), 0), 0u);
  chain m;
  m.append(text("one"));
  m.append(text("two"));
  m.append(text("three"));
  EXPECT_EQ(m.iovecs(iov, 0), 3u);
  EXPECT_EQ(m.iovecs(std::span<iovec>(iov, 2), 0), 2u);
  EXPECT_EQ(std::string(static_cast<char*>(iov[1].iov_base), iov[1].iov_len), "two");
}

TEST_F(ChainTest, FrontRunSpansSlicesBackToBackInMemoryUpToMax) {
  std::vector<page_ref> pages;
  for (int i = 0; i < 8; ++i)
    pages.push_back(pool_.allocate());
  std::sort(pages.begin(), pages.end(),
            [](const page_ref& a, const page_ref& b) { return a.data() < b.data(); });
  std::size_t i = 0;
  while (i + 1 < pages.size() && pages[i].data() + kPageSize != pages[i + 1].data())
    ++i;
  ASSERT_LT(i + 1, pages.size()) << "a fresh pool hands out neighbouring pages of one arena";
  chain c;
  c.append(slice(pages[i], 100, kPageSize - 100));
  c.append(slice(pages[i + 1], 0, 50));
  c.append(file_range(file_, 0, 10));
  std::size_t n = 0;
  auto run = c.front_run(1 << 20, &n);
  EXPECT_EQ(run.data(), pages[i].data() + 100);
  EXPECT_EQ(run.size(), kPageSize - 100 + 50);  // stops at the file range
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(c.front_run(10, &n).size(), 10u);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(c.front_run(kPageSize - 99, &n).size(), kPageSize - 99);
  EXPECT_EQ(n, 2u);
  c.consume(kPageSize - 100 + 50);
  EXPECT_TRUE(c.front_run(1 << 20, &n).empty()) << "a file range first";
  EXPECT_EQ(n, 0u);

  chain apart;  // the second slice starts a page of its own: not after the first's end
  apart.append(text("abc"));
  apart.append(text("def"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(apart.front_run(100, &n).data()), 3), "abc");
  EXPECT_EQ(apart.front_run(100).size(), 3u);
  EXPECT_EQ(n, 1u);
  EXPECT_TRUE(chain().front_run(100).empty());
}

TEST_F(ChainTest, MemoryChainIsAnAsioConstBufferSequence) {
  chain m;
  m.append(text("hello, "));
  m.append(text("world"));
  ASSERT_TRUE(m.all_memory());
  EXPECT_EQ(asio::buffer_size(m), 12u);
  std::string out(12, '\0');
  EXPECT_EQ(asio::buffer_copy(asio::buffer(out), m), 12u);
  EXPECT_EQ(out, "hello, world");
  std::size_t n = 0;
  for (auto it = asio::buffer_sequence_begin(m); it != asio::buffer_sequence_end(m); ++it)
    ++n;
  EXPECT_EQ(n, 2u);
}

TEST_F(ChainTest, CopyOfAPartlyConsumedChainHoldsOnlyWhatIsLeft) {
  chain c = mixed();
  c.consume(41 + 5000 + 1);  // header, first range and half the CRLF gone
  chain copy = c;
  EXPECT_EQ(copy.segment_count(), c.segment_count());
  EXPECT_EQ(copy.size(), c.size());
  EXPECT_EQ(flatten(copy), flatten(c));
  chain assigned;
  assigned = c;
  EXPECT_EQ(flatten(assigned), flatten(c));
  EXPECT_FALSE(assigned.all_memory());
}

TEST_F(ChainTest, CopyingAChainSharesPagesWithoutCopyingBytes) {
  chain m;
  m.append(text("abc"));
  std::uint64_t copied = stats::copied_bytes();
  chain copy = m;
  EXPECT_EQ(std::get<slice>(copy.front()).data(), std::get<slice>(m.front()).data());
  EXPECT_EQ(std::get<slice>(m.front()).page()->use_count(), 2u);
  EXPECT_EQ(stats::copied_bytes(), copied);
}

}  // namespace
}  // namespace pagewire::fs
