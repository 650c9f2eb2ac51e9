#pragma once

/// Feeding a decoder in pieces, checked against codec.h's contract on every call: shared by
/// tests/filters/codec_corrupt_input_test.cc and tests/fuzz/codec_fuzz.cc (no gtest here).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>

namespace pagewire::filters::testing {

using bytes = std::vector<std::byte>;

/// No per-call output limit.
inline constexpr std::size_t kUnlimited = ~std::size_t{0};

/// The bytes of a chain of memory slices.
inline bytes memory_bytes(const fs::chain& c) {
  bytes v;
  v.reserve(c.size());
  for (const fs::segment& s : c.segments()) {
    auto b = std::get<fs::slice>(s).bytes();
    v.insert(v.end(), b.begin(), b.end());
  }
  return v;
}

struct decode_outcome {
  std::error_code ec;
  bytes out;
  std::string broken;  ///< a contract the decoder broke on the way; empty when none
};

/// Feeds `in` to a fresh decoder in the pieces `cuts` (offsets; one below an earlier cut
/// counts as that cut) make, each call allowed `out_limit` bytes of output, then drains it
/// with empty calls; a decoder that stops off a frame boundary ends in errc::truncated.
/// Checks every call against codec.h's contract; a call that neither consumes nor produces
/// while input is left is a stall (a caller would loop forever).
inline decode_outcome feed(fs::page_pool& pool, const decoder_options& o,
                           std::span<const std::byte> in, const std::vector<std::size_t>& cuts,
                           std::size_t out_limit) {
  decode_outcome r;
  auto dec = make_decoder(o, r.ec);
  if (!dec) {
    r.broken = "make_decoder failed: " + r.ec.message();
    return r;
  }
  page_writer w(pool);
  std::size_t consumed = 0, made = 0;
  auto call = [&](std::span<const std::byte> piece) {
    const std::size_t before = w.pending();
    consumed = 0;
    r.ec = dec->decode(piece, w, out_limit, consumed);
    made = w.pending() - before;
    if (consumed > piece.size()) r.broken = "consumed more than it was given";
    if (out_limit != kUnlimited && made >= out_limit + fs::kPageSize) {
      r.broken = "one call's output ran a page past out_limit";
    }
    return !r.ec && r.broken.empty();
  };
  bool going = true;
  std::size_t from = 0;
  for (std::size_t i = 0; going && i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? std::max(cuts[i], from) : in.size();
    while (going && from < end) {
      going = call(in.subspan(from, end - from));
      from += consumed;
      if (going && consumed == 0 && made == 0) {
        r.broken = "a call with input left neither consumed nor produced";
        going = false;
      }
    }
  }
  while (going && call({}) && made > 0) {
  }
  if (!r.ec && r.broken.empty() && !dec->at_boundary()) r.ec = errc::truncated;
  if (r.broken.empty() && dec->produced() != w.pending()) {
    r.broken = "produced() disagrees with the bytes written";
  }
  if (r.broken.empty() && w.pending() > o.max_output) r.broken = "output passed max_output";
  r.out = memory_bytes(w.take());
  return r;
}

/// A chain of `in` whose slices break at `cuts` (a one-byte gap between pieces keeps the
/// chain from merging them) and at page ends.
inline fs::chain chain_of(fs::page_pool& pool, std::span<const std::byte> in,
                          const std::vector<std::size_t>& cuts) {
  fs::chain c;
  fs::page_ref page;
  std::size_t used = fs::kPageSize, from = 0;
  for (std::size_t i = 0; i <= cuts.size(); ++i) {
    const std::size_t end = i < cuts.size() ? std::max(cuts[i], from) : in.size();
    ++used;
    while (from < end) {
      if (used >= fs::kPageSize) {
        page = pool.allocate();
        used = 0;
      }
      const std::size_t n = std::min(end - from, fs::kPageSize - used);
      std::memcpy(page.data() + used, in.data() + from, n);
      c.append(fs::slice(page, used, n));
      used += n;
      from += n;
    }
  }
  return c;
}

inline bool is_prefix(const bytes& a, const bytes& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

/// The errors a decoder may end in on bad input.
inline bool is_decode_error(std::error_code ec) {
  return ec.category() == filters_category() &&
         (ec == errc::truncated || ec == errc::corrupt_data || ec == errc::output_limit ||
          ec == errc::window_too_large);
}

}  // namespace pagewire::filters::testing
