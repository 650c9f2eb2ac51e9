// libFuzzer target for the decoders (gzip, deflate, zstd): the input, fed whole, cut at
// data-chosen points with a data-chosen per-call output limit, byte by byte and through
// decompress() over a cut chain, must end the same way every time, in success or a decode
// error of filters_category, never past max_output; in round-trip mode the input is first
// encoded by pagewire's encoder, fed in pieces, and must decode back to itself, cut short
// must be errc::truncated and with a byte after it an error.
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh codec` with clang++-14; its seeds (corpus/codec/)
// run in every `make test` as //tests/fuzz:codec_corpus_test.
//
// Input: byte 0 picks the format (bits 0-1: gzip, deflate, zstd, zstd), round trip (bit 2)
// and max_output (bits 3-5); byte 1 seeds the cut points and output limits; the rest is the
// data.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <system_error>
#include <vector>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>

#include "../filters/decode_feed.h"
#include "fuzz_check.h"

namespace filters = pagewire::filters;
namespace fs = pagewire::fs;
using filters::testing::bytes;
using outcome = filters::testing::decode_outcome;
using filters::testing::is_decode_error;
using filters::testing::is_prefix;
using filters::testing::kUnlimited;
using filters::testing::memory_bytes;

namespace {

fs::page_pool& pool() {
  static fs::page_pool* p = new fs::page_pool();
  return *p;
}

// Cut points and limits from the seed byte (xorshift: the same input, the same cuts).
struct picker {
  std::uint64_t s;
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::vector<std::size_t> cuts(std::size_t n) {
    std::vector<std::size_t> v(1 + next() % 12);
    for (auto& c : v)
      c = n == 0 ? 0 : next() % (n + 1);
    std::sort(v.begin(), v.end());
    return v;
  }
  std::size_t limit() { return next() % 2 ? kUnlimited : 1 + next() % (3 * fs::kPageSize); }
};

outcome feed(const filters::decoder_options& o, std::span<const std::byte> in,
             const std::vector<std::size_t>& cuts, std::size_t out_limit) {
  outcome r = filters::testing::feed(pool(), o, in, cuts, out_limit);
  if (!r.broken.empty()) {
    std::fprintf(stderr, "invariant failed: %s\n", r.broken.c_str());
    std::abort();
  }
  return r;
}

// Every way of feeding `in` ends like the whole feed; returns that outcome.
outcome decode_all_ways(const filters::decoder_options& o, std::span<const std::byte> in,
                        picker& pick) {
  const outcome whole = feed(o, in, {}, kUnlimited);
  check(!whole.ec || is_decode_error(whole.ec));
  auto agrees = [&](const outcome& r) {
    check(r.ec == whole.ec);
    if (!r.ec) {
      check(r.out == whole.out);
    } else {
      check(is_prefix(r.out, whole.out) || is_prefix(whole.out, r.out));
    }
  };
  agrees(feed(o, in, pick.cuts(in.size()), pick.limit()));
  if (in.size() <= 512) {
    std::vector<std::size_t> each(in.size() > 1 ? in.size() - 1 : 0);
    for (std::size_t i = 0; i < each.size(); ++i)
      each[i] = i + 1;
    agrees(feed(o, in, each, pick.limit()));
  }
  fs::chain out;
  const std::error_code ec = filters::decompress(
      filters::testing::chain_of(pool(), in, pick.cuts(in.size())), o, pool(), out);
  check(ec == whole.ec);
  if (!ec) check(memory_bytes(out) == whole.out);
  return whole;
}

// Encodes `data` with pagewire's encoder, fed in pieces with per-call output limits.
bytes encode(filters::coding kind, std::span<const std::byte> data, picker& pick) {
  filters::encoder_options eo{kind};
  eo.level = kind == filters::coding::zstd ? static_cast<int>(1 + pick.next() % 6)
                                           : static_cast<int>(pick.next() % 10);
  std::error_code ec;
  auto enc = filters::make_encoder(eo, ec);
  check(enc != nullptr);
  filters::page_writer w(pool());
  const std::size_t limit = pick.limit();
  std::size_t consumed = 0, from = 0;
  bool finished = false;
  for (std::size_t end : pick.cuts(data.size())) {
    while (from < end) {
      const std::size_t before = w.pending();
      check(!enc->encode(data.subspan(from, end - from), filters::encoder::flush::none, w, limit,
                         consumed, finished));
      check(consumed > 0 || w.pending() > before);
      from += consumed;
    }
  }
  while (from < data.size()) {
    check(!enc->encode(data.subspan(from), filters::encoder::flush::none, w, limit, consumed,
                       finished));
    from += consumed;
  }
  for (int calls = 0; !finished; ++calls) {
    check(calls < 1000000);
    check(!enc->encode({}, filters::encoder::flush::end, w, limit, consumed, finished));
  }
  return memory_bytes(w.take());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const filters::coding kinds[] = {filters::coding::gzip, filters::coding::deflate,
                                          filters::coding::zstd, filters::coding::zstd};
  static const std::uint64_t caps[] = {1u << 20, 1u << 20, 1u << 20, 1u << 20, 0, 1, 4096, 65536};
  filters::decoder_options o{kinds[data[0] & 3]};
  const bool round_trip = data[0] & 4;
  o.max_output = round_trip ? std::uint64_t{1} << 30 : caps[(data[0] >> 3) & 7];
  picker pick{0x9e3779b97f4a7c15ull * (data[1] + 1)};
  const std::span<const std::byte> rest(reinterpret_cast<const std::byte*>(data) + 2, size - 2);
  if (round_trip) {
    const bytes frame = encode(o.kind, rest, pick);
    const outcome r = decode_all_ways(o, frame, pick);
    check(!r.ec);
    check(r.out.size() == rest.size() && std::equal(r.out.begin(), r.out.end(), rest.begin()));
    // Cut short, the frame is errc::truncated; with a byte after it, an error.
    const bytes plain(rest.begin(), rest.end());
    const std::size_t cut = 1 + pick.next() % (frame.size() - 1);
    const outcome shorter = decode_all_ways(o, std::span(frame).first(cut), pick);
    check(shorter.ec == filters::errc::truncated && is_prefix(shorter.out, plain));
    bytes longer = frame;
    longer.push_back(static_cast<std::byte>(data[1]));
    const outcome trailing = decode_all_ways(o, longer, pick);
    check(trailing.ec == filters::errc::truncated || trailing.ec == filters::errc::corrupt_data);
  } else {
    decode_all_ways(o, rest, pick);
  }
  return 0;
}
