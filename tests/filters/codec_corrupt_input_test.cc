// Decoders against input from an untrusted peer: truncated, bit-flipped, spliced, random,
// concatenated and trailing-garbage frames end in success or a filters error (never a crash,
// a stall or wrong bytes), never produce more than max_output, and feeding the same bytes in
// pieces gives the same outcome as feeding them whole.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <zlib.h>
#include <zstd.h>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/page_writer.h>

#include "tests/filters/decode_feed.h"
#include "tests/filters/helpers.h"

namespace pwtest {
namespace {

using filters::coding;
using filters::errc;
using bytes = std::vector<std::byte>;

constexpr std::uint64_t kDefaultMaxOutput = filters::decoder_options{}.max_output;
constexpr coding kKinds[] = {coding::gzip, coding::deflate, coding::zstd};

// ---- inputs and their encodings ------------------------------------------------------------

/// Text with runs of random bytes and of zeros: stored, compressed and repeated blocks.
bytes mixed_bytes(std::size_t n, std::uint64_t seed) {
  bytes v;
  std::mt19937_64 g(seed);
  while (v.size() < n) {
    const auto text = text_bytes(1 + g() % 8192, g());
    v.insert(v.end(), text.begin(), text.end());
    if (g() % 3 == 0) {
      const auto noise = random_bytes(1 + g() % 4096, g());
      v.insert(v.end(), noise.begin(), noise.end());
    } else if (g() % 3 == 0) {
      v.insert(v.end(), 1 + g() % 4096, std::byte{0});
    }
  }
  v.resize(n);
  return v;
}

/// A valid encoding of `plain`. `checked`: the frame carries a checksum of the content
/// (gzip CRC-32, zlib Adler-32, zstd's content checksum), so a success must give `plain`.
struct encoding {
  std::string name;
  coding kind;
  bytes frame;
  bytes plain;
  bool checked = true;
};

bytes pagewire_encode(coding kind, const bytes& plain) {
  fs::page_pool pool;
  fs::chain out;
  const auto ec = filters::compress(to_chain(pool, plain), {kind, -1}, pool, out);
  EXPECT_FALSE(ec) << ec.message();
  return to_bytes(out);
}

/// zlib's own deflate at level 9; gzip with a name, comment, extra field and header CRC.
bytes zlib_encode(coding kind, const bytes& plain) {
  z_stream z{};
  EXPECT_EQ(
      deflateInit2(&z, 9, Z_DEFLATED, kind == coding::gzip ? 16 + 15 : 15, 9, Z_DEFAULT_STRATEGY),
      Z_OK);
  char name[] = "name.txt";
  char comment[] = "made by zlib";
  unsigned char extra[] = {'p', 'w', 2, 0, 'h', 'i'};
  gz_header h{};
  h.name = reinterpret_cast<Bytef*>(name);
  h.comment = reinterpret_cast<Bytef*>(comment);
  h.extra = extra;
  h.extra_len = sizeof extra;
  h.hcrc = 1;
  h.os = 3;
  if (kind == coding::gzip) {
    EXPECT_EQ(deflateSetHeader(&z, &h), Z_OK);
  }
  bytes out(deflateBound(&z, plain.size()) + 64);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

/// libzstd's one-shot compressor: content size in the header, checksum as asked.
bytes zstd_encode(const bytes& plain, bool checksum) {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 5);
  ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  bytes out(ZSTD_compressBound(plain.size()));
  const std::size_t n = ZSTD_compress2(c, out.data(), out.size(), plain.data(), plain.size());
  ZSTD_freeCCtx(c);
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

/// Every format's encodings of empty, short text and 1 MiB mixed input, by pagewire's
/// encoder and by the library directly. Built once per test binary.
const std::vector<encoding>& encodings() {
  static const std::vector<encoding> all = [] {
    std::vector<encoding> v;
    const std::pair<const char*, bytes> inputs[] = {{"empty", {}},
                                                    {"short text", text_bytes(200, 3)},
                                                    {"1 MiB mixed", mixed_bytes(1 << 20, 5)}};
    for (coding kind : kKinds) {
      const std::string k(filters::coding_name(kind));
      for (const auto& [what, plain] : inputs) {
        v.push_back({"pagewire " + k + " of " + what, kind, pagewire_encode(kind, plain), plain});
        if (kind == coding::zstd) {
          v.push_back({"libzstd of " + std::string(what), kind, zstd_encode(plain, true), plain});
          v.push_back({"libzstd without checksum of " + std::string(what), kind,
                       zstd_encode(plain, false), plain, false});
        } else {
          v.push_back({"zlib " + k + " of " + what, kind, zlib_encode(kind, plain), plain});
        }
      }
    }
    return v;
  }();
  return all;
}

bool is_short(const encoding& e) {
  return e.frame.size() <= 512;
}

// ---- decoding in pieces ----------------------------------------------------------------------

using outcome = filters::testing::decode_outcome;
using filters::testing::chain_of;
using filters::testing::feed;
using filters::testing::is_decode_error;
using filters::testing::is_prefix;
using filters::testing::kUnlimited;

std::vector<std::size_t> random_cuts(std::size_t n, std::size_t count, std::mt19937_64& rng) {
  std::vector<std::size_t> cuts(count);
  for (auto& c : cuts)
    c = n == 0 ? 0 : rng() % (n + 1);
  std::sort(cuts.begin(), cuts.end());
  return cuts;
}

std::string describe(coding kind, std::span<const std::byte> in) {
  static const char* hex = "0123456789abcdef";
  std::string s = std::string(filters::coding_name(kind)) + ", " + std::to_string(in.size()) +
                  " bytes of input:";
  for (std::size_t i = 0; i < in.size() && i < 96; ++i) {
    const auto b = static_cast<unsigned>(in[i]);
    s += i % 32 == 0 ? "\n  " : " ";
    s += hex[b >> 4];
    s += hex[b & 15];
  }
  if (in.size() > 96) s += " ...";
  return s;
}

/// How decodes_consistently cuts an input.
struct cutting {
  bool bytewise = false;  ///< byte by byte is one of the ways (short inputs)
  std::size_t ways = 4;   ///< how many of the ways run, picked at random
  std::uint64_t max_output = kDefaultMaxOutput;
};

/// Decodes `in` whole, then some of: cut at a few random points, cut into many small pieces
/// (each with a random per-call output limit or none), byte by byte, and through
/// decompress() over a chain with random slice boundaries. Each must end in success or a
/// decode error of filters_category within max_output, and all must agree with the whole
/// feed: the same error_code, the same bytes on success and, on error, outputs one a prefix
/// of the other (a decoder may hold back the output of the call that found the error).
/// `whole` is set to the whole feed's outcome.
::testing::AssertionResult decodes_consistently(fs::page_pool& pool, coding kind,
                                                std::span<const std::byte> in, std::mt19937_64& rng,
                                                outcome& whole, cutting how = {}) {
  filters::decoder_options o{kind};
  o.max_output = how.max_output;
  const std::size_t n = in.size();
  whole = feed(pool, o, in, {}, kUnlimited);
  auto fail = [&](const std::string& way, const outcome& r) {
    return ::testing::AssertionFailure()
           << way << ": " << (r.broken.empty() ? "" : r.broken + "; ") << "ended in "
           << (r.ec ? r.ec.message() : "success") << " with " << r.out.size()
           << " bytes; whole: " << (whole.ec ? whole.ec.message() : "success") << " with "
           << whole.out.size() << " bytes; max_output " << o.max_output << "; "
           << describe(kind, in);
  };
  auto valid = [&](const outcome& r) {
    return r.broken.empty() && (!r.ec || is_decode_error(r.ec));
  };
  if (!valid(whole)) return fail("whole", whole);

  auto agrees = [&](const outcome& r) {
    if (!valid(r) || r.ec != whole.ec) return false;
    if (!r.ec) return r.out == whole.out;
    return is_prefix(r.out, whole.out) || is_prefix(whole.out, r.out);
  };
  enum way { few_cuts, small_pieces, byte_by_byte, chain };
  std::vector<way> ways = {few_cuts, small_pieces, chain};
  if (how.bytewise) ways.push_back(byte_by_byte);
  std::shuffle(ways.begin(), ways.end(), rng);
  ways.resize(std::min(ways.size(), how.ways));
  for (way w : ways) {
    std::vector<std::size_t> cuts;
    std::string name;
    switch (w) {
      case few_cuts:
        cuts = random_cuts(n, 1 + rng() % 8, rng);
        name = "cut at a few points";
        break;
      case small_pieces: {
        const std::size_t step = n > (64u << 10) ? 4096 : 64;
        for (std::size_t at = rng() % step; at < n; at += 1 + rng() % step)
          cuts.push_back(at);
        name = "cut into small pieces";
        break;
      }
      case byte_by_byte:
        for (std::size_t at = 1; at < n; ++at)
          cuts.push_back(at);
        name = "byte by byte";
        break;
      case chain: {
        outcome r;
        fs::chain out;
        r.ec =
            filters::decompress(chain_of(pool, in, random_cuts(n, rng() % 16, rng)), o, pool, out);
        r.out = to_bytes(out);
        // decompress() hands output over on success only.
        if (!valid(r) || r.ec != whole.ec || (!r.ec && r.out != whole.out)) {
          return fail("decompress() over a cut chain", r);
        }
        continue;
      }
    }
    const std::size_t limit = rng() % 2 ? kUnlimited : std::size_t{1} + rng() % (3 * fs::kPageSize);
    const outcome r = feed(pool, o, in, cuts, limit);
    if (!agrees(r)) return fail(name + ", out_limit " + std::to_string(limit), r);
  }
  return ::testing::AssertionSuccess();
}

std::span<const std::byte> span_of(const bytes& b) {
  return {b.data(), b.size()};
}

// ---- mutations -----------------------------------------------------------------------------

bytes flip_bits(bytes v, std::size_t flips, std::mt19937_64& rng) {
  for (std::size_t i = 0; i < flips && !v.empty(); ++i)
    v[rng() % v.size()] ^= static_cast<std::byte>(1u << (rng() % 8));
  return v;
}

/// One of: random bytes inserted, a run deleted, a run overwritten with random bytes, a run
/// of the frame copied over another place (each run 1..32 bytes).
bytes splice(bytes v, std::mt19937_64& rng) {
  const std::size_t at = rng() % (v.size() + 1);
  const std::size_t len = 1 + rng() % 32;
  switch (rng() % 4) {
    case 0: {
      const auto noise = random_bytes(len, rng());
      v.insert(v.begin() + static_cast<std::ptrdiff_t>(at), noise.begin(), noise.end());
      break;
    }
    case 1:
      v.erase(v.begin() + static_cast<std::ptrdiff_t>(at),
              v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), at + len)));
      break;
    case 2:
      for (std::size_t i = at; i < v.size() && i < at + len; ++i)
        v[i] = static_cast<std::byte>(rng());
      break;
    default: {
      const std::size_t src = rng() % (v.size() + 1);
      const bytes run(v.begin() + static_cast<std::ptrdiff_t>(src),
                      v.begin() + static_cast<std::ptrdiff_t>(std::min(v.size(), src + len)));
      for (std::size_t i = 0; i < run.size() && at + i < v.size(); ++i)
        v[at + i] = run[i];
      break;
    }
  }
  return v;
}

bytes concat(std::initializer_list<const bytes*> parts) {
  bytes v;
  for (const bytes* p : parts)
    v.insert(v.end(), p->begin(), p->end());
  return v;
}

// ---- tests -----------------------------------------------------------------------------------

// Every valid encoding decodes to its input, however it is cut.
TEST(CodecCorruptInput, ValidFramesDecodeToTheirInputHoweverTheyAreCut) {
  fs::page_pool pool;
  std::mt19937_64 rng(1);
  for (const encoding& e : encodings()) {
    outcome whole;
    ASSERT_TRUE(
        decodes_consistently(pool, e.kind, span_of(e.frame), rng, whole, {.bytewise = is_short(e)}))
        << e.name;
    EXPECT_FALSE(whole.ec) << e.name << ": " << whole.ec.message();
    EXPECT_TRUE(whole.out == e.plain) << e.name;
  }
}

// A proper prefix of a frame is errc::truncated (never a success, never corrupt_data), with
// output that is a prefix of the frame's content.
TEST(CodecCorruptInput, TruncatedFrameIsAnErrorAtEveryLength) {
  fs::page_pool pool;
  std::mt19937_64 rng(2);
  std::size_t variants = 0;
  for (const encoding& e : encodings()) {
    std::vector<std::size_t> lengths;
    if (is_short(e)) {
      for (std::size_t len = 1; len < e.frame.size(); ++len)
        lengths.push_back(len);
    } else {
      lengths = {1, e.frame.size() / 2, e.frame.size() - 1};
      for (int i = 0; i < 3; ++i)
        lengths.push_back(1 + rng() % (e.frame.size() - 1));
    }
    for (std::size_t len : lengths) {
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, e.kind, span_of(e.frame).first(len), rng, whole,
                                       {.bytewise = is_short(e), .ways = 2}))
          << e.name << " cut to " << len;
      ASSERT_EQ(whole.ec, errc::truncated) << e.name << " cut to " << len;
      ASSERT_TRUE(is_prefix(whole.out, e.plain)) << e.name << " cut to " << len;
      ++variants;
    }
  }
  EXPECT_GT(variants, 900u);
}

// Frames back to back decode to their contents back to back; cut exactly between two
// frames the input is a clean end, cut anywhere else errc::truncated.
TEST(CodecCorruptInput, ConcatenatedFramesDecodeInOrderAndEndCleanOnlyBetweenFrames) {
  fs::page_pool pool;
  std::mt19937_64 rng(3);
  for (coding kind : kKinds) {
    std::vector<const encoding*> frames, shorts;
    for (const encoding& e : encodings()) {
      if (e.kind != kind) continue;
      frames.push_back(&e);
      if (is_short(e)) shorts.push_back(&e);
    }
    for (const encoding* a : frames) {
      for (const encoding* b : shorts) {
        if (!is_short(*a) && b->plain.size() != 200) continue;  // a long one: one short after
        const bytes joined = concat({&a->frame, &b->frame});
        const bytes plain = concat({&a->plain, &b->plain});
        const std::string what = a->name + " + " + b->name;
        outcome whole;
        ASSERT_TRUE(decodes_consistently(pool, kind, span_of(joined), rng, whole,
                                         {.ways = is_short(*a) ? 2u : 1u}))
            << what;
        ASSERT_FALSE(whole.ec) << what << ": " << whole.ec.message();
        ASSERT_TRUE(whole.out == plain) << what;
        // Around the boundary; every cut of a short frame followed by itself.
        const std::size_t edge = a->frame.size();
        std::vector<std::size_t> lengths = {edge - 1, edge, edge + 1};
        if (a == b) {
          lengths.clear();
          for (std::size_t len = 1; len < joined.size(); ++len)
            lengths.push_back(len);
        }
        for (std::size_t len : lengths) {
          ASSERT_TRUE(decodes_consistently(pool, kind, span_of(joined).first(len), rng, whole,
                                           {.bytewise = is_short(*a), .ways = 1}))
              << what << " cut to " << len;
          if (len == edge) {
            ASSERT_FALSE(whole.ec) << what << " cut between the frames: " << whole.ec.message();
            ASSERT_TRUE(whole.out == a->plain) << what << " cut between the frames";
          } else {
            ASSERT_EQ(whole.ec, errc::truncated) << what << " cut to " << len;
            ASSERT_TRUE(is_prefix(whole.out, plain)) << what << " cut to " << len;
          }
        }
      }
    }
  }
}

// Bytes after the last frame that are not a whole frame make the input an error, whatever
// they are: random, zeros, or the start of another frame.
TEST(CodecCorruptInput, TrailingGarbageAfterTheLastFrameIsAnError) {
  fs::page_pool pool;
  std::mt19937_64 rng(4);
  std::size_t variants = 0;
  for (const encoding& e : encodings()) {
    const int rounds = is_short(e) ? 48 : 3;
    for (int i = 0; i < rounds; ++i) {
      const std::size_t len = 1 + rng() % 48;
      bytes garbage;
      switch (i % 3) {
        case 0:
          garbage = random_bytes(len, rng());
          break;
        case 1:
          garbage.assign(len, std::byte{0});
          break;
        default:  // a cut-off next frame
          garbage.assign(e.frame.begin(), e.frame.begin() + static_cast<std::ptrdiff_t>(
                                                                std::min(len, e.frame.size() - 1)));
          break;
      }
      const bytes in = concat({&e.frame, &garbage});
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, e.kind, span_of(in), rng, whole,
                                       {.bytewise = is_short(e), .ways = 2}))
          << e.name << " + " << garbage.size() << " bytes";
      ASSERT_TRUE(whole.ec == errc::corrupt_data || whole.ec == errc::truncated)
          << e.name << " + garbage: " << (whole.ec ? whole.ec.message() : "success") << "; "
          << describe(e.kind, garbage);
      const bytes twice = concat({&e.plain, &e.plain});
      ASSERT_TRUE(is_prefix(whole.out, i % 3 == 2 ? twice : e.plain)) << e.name << " + garbage";
      ++variants;
    }
  }
  EXPECT_GT(variants, 600u);
}

// Bit flips anywhere in a checksummed frame either fail to decode or decode to the original
// bytes (a flip in a header field that does not reach the content); never to other bytes.
TEST(CodecCorruptInput, BitFlippedFrameNeverDecodesToOtherBytes) {
  fs::page_pool pool;
  std::mt19937_64 rng(5);
  std::size_t variants = 0, errors = 0;
  for (const encoding& e : encodings()) {
    std::vector<bytes> inputs;
    if (is_short(e)) {
      // Every bit of the first 16 bytes (headers), one bit of every byte after them.
      for (std::size_t at = 0; at < e.frame.size(); ++at) {
        for (unsigned bit = 0; bit < 8; ++bit) {
          if (at >= 16 && bit != rng() % 8) continue;
          inputs.push_back(e.frame);
          inputs.back()[at] ^= static_cast<std::byte>(1u << bit);
        }
      }
      for (int i = 0; i < 100; ++i)
        inputs.push_back(flip_bits(e.frame, 2 + rng() % 7, rng));
    } else {
      for (int i = 0; i < 6; ++i)
        inputs.push_back(flip_bits(e.frame, 1 + i % 3, rng));
    }
    for (const bytes& in : inputs) {
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, e.kind, span_of(in), rng, whole,
                                       {.bytewise = is_short(e), .ways = 1}))
          << e.name << ", bits flipped";
      if (e.checked && !whole.ec) {
        ASSERT_TRUE(whole.out == e.plain) << e.name << ", bits flipped, decoded to other bytes; "
                                          << describe(e.kind, span_of(in));
      }
      ++variants;
      errors += whole.ec ? 1 : 0;
    }
  }
  EXPECT_GT(variants, 3000u);
  EXPECT_GT(errors, variants / 2);
}

// Bytes inserted, deleted, overwritten or copied from elsewhere in a checksummed frame
// either fail to decode or decode to the original bytes; also with a max_output below the
// content's size, where the cap and the damage race.
TEST(CodecCorruptInput, SplicedFrameNeverDecodesToOtherBytes) {
  fs::page_pool pool;
  std::mt19937_64 rng(6);
  std::size_t variants = 0;
  for (const encoding& e : encodings()) {
    const int rounds = is_short(e) ? 200 : 6;
    for (int i = 0; i < rounds; ++i) {
      const bytes in = splice(e.frame, rng);
      const std::uint64_t cap = i % 4 == 3 ? e.plain.size() / 2 : kDefaultMaxOutput;
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, e.kind, span_of(in), rng, whole,
                                       {.bytewise = is_short(e), .ways = 1, .max_output = cap}))
          << e.name << ", spliced";
      if (e.checked && !whole.ec) {
        ASSERT_TRUE(whole.out == e.plain)
            << e.name << ", spliced, decoded to other bytes; " << describe(e.kind, span_of(in));
      }
      ++variants;
    }
  }
  EXPECT_GT(variants, 2500u);
}

// Random buffers, bare or behind the format's magic bytes, end in success or a decode error
// however they are cut; behind a magic, the decoders get past the header to find damage.
TEST(CodecCorruptInput, RandomBytesEndInSuccessOrADecodeError) {
  fs::page_pool pool;
  std::mt19937_64 rng(7);
  for (coding kind : kKinds) {
    std::size_t corrupt = 0, truncated = 0;
    for (int i = 0; i < 1200; ++i) {
      const std::size_t len = i % 2 ? rng() % 64 : rng() % 4096;
      bytes in = random_bytes(len, rng());
      if (i % 3 != 0) {  // behind a valid magic or header start
        bytes magic;
        if (kind == coding::gzip) {
          magic = {std::byte{0x1f}, std::byte{0x8b}, std::byte{0x08}};
          if (i % 3 == 1) magic.push_back(std::byte{0});  // no optional header fields
        } else if (kind == coding::deflate) {
          magic = {std::byte{0x78}, i % 3 == 1 ? std::byte{0x9c} : std::byte{0x01}};
        } else {
          magic = {std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f}, std::byte{0xfd}};
        }
        in.insert(in.begin(), magic.begin(), magic.end());
      }
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, kind, span_of(in), rng, whole,
                                       {.bytewise = in.size() <= 64, .ways = 2}))
          << "random buffer " << i;
      corrupt += whole.ec == errc::corrupt_data;
      truncated += whole.ec == errc::truncated;
    }
    EXPECT_GT(corrupt, 100u) << filters::coding_name(kind);
    EXPECT_GT(truncated, 10u) << filters::coding_name(kind);
  }
}

// A decoder gives at most max_output bytes: content up to the cap decodes, beyond it is
// errc::output_limit with no more than max_output bytes out, whole or cut; bombs included.
TEST(CodecCorruptInput, DecoderNeverProducesMoreThanMaxOutput) {
  fs::page_pool pool;
  std::mt19937_64 rng(8);
  std::vector<encoding> cases = encodings();
  const bytes zeros(2u << 20);
  for (coding kind : kKinds) {
    fs::chain packed;
    ASSERT_FALSE(filters::compress(to_chain(pool, zeros), {kind, 9}, pool, packed));
    cases.push_back({"bomb", kind, to_bytes(packed), zeros});
  }
  for (const encoding& e : cases) {
    const std::uint64_t n = e.plain.size();
    std::vector<std::uint64_t> caps = {0, n / 2, n + 1};
    if (n > 0) caps.insert(caps.end(), {n - 1, n, 1 + rng() % n});
    if (is_short(e)) caps.insert(caps.end(), {1, n + fs::kPageSize});
    for (std::uint64_t cap : caps) {
      outcome whole;
      ASSERT_TRUE(decodes_consistently(
          pool, e.kind, span_of(e.frame), rng, whole,
          {.bytewise = is_short(e), .ways = is_short(e) ? 4u : 1u, .max_output = cap}))
          << e.name << ", max_output " << cap;
      if (n <= cap) {
        ASSERT_FALSE(whole.ec) << e.name << ", max_output " << cap << ": " << whole.ec.message();
      } else {
        ASSERT_EQ(whole.ec, errc::output_limit) << e.name << ", max_output " << cap;
      }
      ASSERT_LE(whole.out.size(), cap) << e.name;
      ASSERT_TRUE(is_prefix(whole.out, e.plain)) << e.name << ", max_output " << cap;
    }
  }
}

// Input that libzstd reads two ways ends the same however it is cut: frames its one-shot
// path (a whole frame at hand) refuses and its streaming path accepts, and bytes where,
// after a header it cannot parse, it finds a legacy (pre-1.0) frame magic in that call's
// bytes alone. pagewire's decoder keeps libzstd on one path.
TEST(CodecCorruptInput, ZstdInputLibzstdReadsTwoWaysEndsTheSameHoweverItIsCut) {
  fs::page_pool pool;
  std::mt19937_64 rng(10);
  auto b = [](std::initializer_list<int> v) {
    bytes out;
    for (int x : v)
      out.push_back(static_cast<std::byte>(x));
    return out;
  };
  const bytes inputs[] = {
      // Magic, a single-segment descriptor with a one-byte content size, then blocks.
      // Declares 2 bytes: a raw block 'x', an empty last raw block.
      b({0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x02, 0x08, 0x00, 0x00, 'x', 0x01, 0x00, 0x00}),
      // Declares 1 byte: an empty last raw block, the content checksum of nothing.
      b({0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x01, 0x01, 0x00, 0x00, 0x99, 0xe9, 0xd8, 0x51}),
      // Declares 0 bytes: an empty last compressed block, the content checksum of nothing.
      b({0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x00, 0x05, 0x00, 0x00, 0x99, 0xe9, 0xd8, 0x51}),
      // The magic's first byte, then the magic of a v0.5 legacy frame.
      b({0x28, 0x25, 0xb5, 0x2f, 0xfd, 0x0f, 0xcf, 0xbd}),
      // A descriptor with its reserved bit set, then the magic of a v0.5 legacy frame.
      b({0x28, 0xb5, 0x2f, 0xfd, 0x08, 0x25, 0xb5, 0x2f, 0xfd, 0x0f, 0xcf, 0xbd}),
  };
  // The first two end short of the content size they declare: corrupt, however they are cut.
  const std::error_code expected[] = {
      errc::corrupt_data, errc::corrupt_data, {}, errc::corrupt_data, errc::corrupt_data};
  filters::decoder_options o{coding::zstd};
  for (std::size_t k = 0; k < std::size(inputs); ++k) {
    const bytes& in = inputs[k];
    outcome whole;
    EXPECT_TRUE(decodes_consistently(pool, coding::zstd, span_of(in), rng, whole));
    EXPECT_EQ(whole.ec, expected[k]) << describe(coding::zstd, span_of(in));
    for (std::size_t cut = 1; cut < in.size(); ++cut) {
      const outcome r = feed(pool, o, span_of(in), {cut}, kUnlimited);
      EXPECT_TRUE(r.broken.empty()) << r.broken;
      EXPECT_EQ(r.ec, whole.ec) << "cut at " << cut << "; " << describe(coding::zstd, span_of(in));
      EXPECT_TRUE(r.out == whole.out) << "cut at " << cut;
    }
    const bytes twice = concat({&in, &in});
    EXPECT_TRUE(
        decodes_consistently(pool, coding::zstd, span_of(twice), rng, whole, {.bytewise = true}));
  }
}

// A zstd frame written by hand: the magic, the frame header's descriptor and fields as given,
// then blocks. Raw blocks hold 'a'..'z' repeated.
class zstd_frame {
 public:
  explicit zstd_frame(std::initializer_list<int> header) {
    for (int x : {0x28, 0xb5, 0x2f, 0xfd})
      out_.push_back(static_cast<std::byte>(x));
    for (int x : header)
      out_.push_back(static_cast<std::byte>(x));
  }
  /// Single-segment, with a two-byte content size (RFC 8878: the value + 256).
  static zstd_frame declaring(std::size_t size) {
    return zstd_frame(
        {0x60, static_cast<int>((size - 256) & 0xff), static_cast<int>((size - 256) >> 8)});
  }
  zstd_frame& block_header(std::size_t value) {
    for (int i = 0; i < 3; ++i)
      out_.push_back(static_cast<std::byte>(value >> (8 * i)));
    return *this;
  }
  zstd_frame& raw(std::size_t n, bool last = false) {
    block_header(n << 3 | (last ? 1 : 0));  // block type 0: raw
    for (std::size_t i = 0; i < n; ++i)
      out_.push_back(static_cast<std::byte>('a' + i % 26));
    return *this;
  }
  bytes build() const { return out_; }

 private:
  bytes out_;
};

struct limit_case {
  bytes in;
  std::uint64_t max_output;
  std::error_code expected;
};

// Each input ends in its expected outcome under its max_output, the same however it is cut.
void expect_outcomes(std::span<const limit_case> cases, std::uint64_t seed) {
  fs::page_pool pool;
  std::mt19937_64 rng(seed);
  for (const limit_case& c : cases) {
    outcome whole;
    EXPECT_TRUE(decodes_consistently(pool, coding::zstd, span_of(c.in), rng, whole,
                                     {.bytewise = true, .max_output = c.max_output}));
    EXPECT_EQ(whole.ec, c.expected)
        << "max_output " << c.max_output << "; " << describe(coding::zstd, span_of(c.in));
    EXPECT_LE(whole.out.size(), c.max_output);
  }
}

// A zstd frame whose header declares a content size is held to it and to max_output the same
// way however it is cut. libzstd checks the declared size when the last block is whole, so at
// hand in one call a last raw block that does not fit is corrupt before any of it is handed
// out, while a byte at a time it is handed out as it comes. (Found by the codec fuzzer: a
// frame declaring 4052 bytes, max_output 0, and a 4-byte last raw block ended in corrupt_data
// whole and in output_limit byte by byte.)
TEST(CodecCorruptInput, ZstdDeclaredContentSizeBoundsTheFrameHoweverItIsCut) {
  const bytes short_frame = zstd_frame::declaring(4052).raw(4, true).build();
  const bytes long_frame = zstd_frame::declaring(300).raw(290).raw(20, true).build();
  const bytes exact_frame = zstd_frame::declaring(300).raw(290).raw(10, true).build();
  const limit_case cases[] = {
      // Declares 4052, holds 4: over a limit below 4052, short of its size above it.
      {short_frame, 0, errc::output_limit},
      {short_frame, 3, errc::output_limit},
      {short_frame, 4051, errc::output_limit},
      {short_frame, 4052, errc::corrupt_data},
      // Declares 300, holds 290 + 20: past its size, and past a limit of 305 (or 310) too.
      {long_frame, 305, errc::corrupt_data},
      {long_frame, 310, errc::corrupt_data},
      {long_frame, kDefaultMaxOutput, errc::corrupt_data},
      // Declares 300 and holds it: decodes under a limit of 300, is over one of 299.
      {exact_frame, 300, {}},
      {exact_frame, 299, errc::output_limit},
  };
  expect_outcomes(cases, 11);
}

// Output past max_output, then corrupt input: output_limit however it is cut, as for any input
// whose output passes the limit before the byte where the error shows. libzstd goes on reading
// block headers after the output is full and an error there hides what it wrote, so given at
// once these ended in corrupt_data and byte by byte in output_limit (the codec fuzzer: a 1-byte
// raw block, empty blocks, a block of the reserved type, max_output 0).
TEST(CodecCorruptInput, ZstdOutputPastTheLimitBeforeAnErrorIsOutputLimitHoweverItIsCut) {
  // No content size, an 8 KiB window; raw blocks of these sizes (none last), 20 empty raw
  // blocks, then a block header of the reserved type.
  auto frame = [](std::initializer_list<std::size_t> blocks) {
    zstd_frame f({0x00, 0x18});
    for (std::size_t n : blocks)
      f.raw(n);
    for (int i = 0; i < 20; ++i)
      f.raw(0);
    return f.block_header(3 << 1).build();  // block type 3: reserved
  };
  const limit_case cases[] = {
      {frame({1}), 0, errc::output_limit},
      {frame({1}), 1, errc::corrupt_data},
      {frame({3000, 2000}), 4999, errc::output_limit},
      {frame({3000, 2000}), 4096, errc::output_limit},
      {frame({3000, 2000}), 5000, errc::corrupt_data},
  };
  expect_outcomes(cases, 12);
}

// Random inputs (text-like and random bytes, 0..256 KiB) through pagewire's encoder fed in
// random pieces with random levels and output limits decode back to themselves, cut at
// random points.
TEST(CodecCorruptInput, RandomInputsRoundTripThroughRandomSplits) {
  fs::page_pool pool;
  std::mt19937_64 rng(9);
  for (coding kind : kKinds) {
    for (int i = 0; i < 24; ++i) {
      const std::size_t size = i % 3 == 0   ? rng() % 64
                               : i % 3 == 1 ? rng() % 8192
                                            : rng() % ((256u << 10) + 1);
      const bytes plain = i % 2 ? random_bytes(size, rng()) : text_bytes(size, rng());
      filters::encoder_options eo{kind};
      eo.level =
          kind == coding::zstd ? static_cast<int>(1 + rng() % 9) : static_cast<int>(rng() % 10);
      if (kind != coding::zstd && rng() % 2) eo.window_bits = static_cast<int>(9 + rng() % 7);
      std::error_code ec;
      auto enc = filters::make_encoder(eo, ec);
      ASSERT_TRUE(enc) << ec.message();
      filters::page_writer w(pool);
      const std::size_t out_limit = rng() % 2 ? kUnlimited : 1 + rng() % (2 * fs::kPageSize);
      std::span<const std::byte> left = span_of(plain);
      std::size_t consumed = 0;
      bool finished = false;
      while (!left.empty()) {
        const std::size_t piece = std::min(left.size(), std::size_t{1} + rng() % 20000);
        const std::size_t before = w.pending();
        ASSERT_FALSE(enc->encode(left.first(piece), filters::encoder::flush::none, w, out_limit,
                                 consumed, finished));
        ASSERT_TRUE(consumed > 0 || w.pending() > before) << "encoder stalled";
        left = left.subspan(consumed);
      }
      for (int calls = 0; !finished; ++calls) {
        ASSERT_LT(calls, 100000) << "encoder never finished";
        ASSERT_FALSE(
            enc->encode({}, filters::encoder::flush::end, w, out_limit, consumed, finished));
      }
      const bytes frame = to_bytes(w.take());
      outcome whole;
      ASSERT_TRUE(decodes_consistently(pool, kind, span_of(frame), rng, whole,
                                       {.bytewise = frame.size() <= 256}))
          << filters::coding_name(kind) << " round trip " << i;
      ASSERT_FALSE(whole.ec) << whole.ec.message();
      ASSERT_TRUE(whole.out == plain) << filters::coding_name(kind) << " round trip " << i << ", "
                                      << size << " bytes, level " << eo.level;
    }
  }
}

}  // namespace
}  // namespace pwtest
