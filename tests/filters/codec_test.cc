// gzip/deflate/zstd engines: round trips, output read by the real tools and libraries,
// and the bounds that stop bombs and oversized zstd windows.

#include <zlib.h>
#include <zstd.h>

#include <pagewire/filters/codec.h>

#include "tests/filters/helpers.h"

namespace pwtest {
namespace {

using filters::coding;

struct codec_case {
  coding kind;
  int level;
};

class CodecRoundTrip : public ::testing::TestWithParam<codec_case> {};

TEST_P(CodecRoundTrip, ByteExactForSizesZeroToSixteenMiB) {
  fs::page_pool pool;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{4095}, std::size_t{65537},
                        std::size_t{(1u << 20) + 3}, std::size_t{16u << 20}}) {
    const auto data = text_bytes(n);
    fs::chain packed, unpacked;
    ASSERT_FALSE(
        filters::compress(to_chain(pool, data), {GetParam().kind, GetParam().level}, pool, packed));
    filters::decoder_options d{GetParam().kind};
    ASSERT_FALSE(filters::decompress(packed, d, pool, unpacked));
    ASSERT_EQ(to_bytes(unpacked), data) << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Codecs, CodecRoundTrip,
                         ::testing::Values(codec_case{coding::gzip, 1}, codec_case{coding::gzip, 6},
                                           codec_case{coding::deflate, 6},
                                           codec_case{coding::zstd, 1},
                                           codec_case{coding::zstd, 3}));

std::vector<std::byte> packed_bytes(fs::page_pool& pool, const std::vector<std::byte>& data,
                                    coding kind) {
  fs::chain packed;
  EXPECT_FALSE(filters::compress(to_chain(pool, data), {kind, -1}, pool, packed));
  return to_bytes(packed);
}

TEST(CodecTools, GzipOutputDecodesWithGzipCliAndZlib) {
  fs::page_pool pool;
  const auto data = text_bytes((3u << 20) + 17);
  const auto packed = packed_bytes(pool, data, coding::gzip);
  const std::string gz = tmpdir() + "/out.gz";
  write_file(gz, packed);
  ASSERT_EQ(std::system(("gzip -d -f " + gz).c_str()), 0);
  EXPECT_EQ(read_file(tmpdir() + "/out"), data);

  std::vector<std::byte> out(data.size());
  z_stream z{};
  ASSERT_EQ(inflateInit2(&z, 16 + 15), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(packed.data()));
  z.avail_in = static_cast<uInt>(packed.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
  EXPECT_EQ(z.total_out, data.size());
  inflateEnd(&z);
  EXPECT_EQ(out, data);
}

TEST(CodecTools, DeflateIsZlibFormat) {
  fs::page_pool pool;
  const auto data = text_bytes(100000);
  const auto packed = packed_bytes(pool, data, coding::deflate);
  std::vector<std::byte> out(data.size());
  uLongf n = out.size();
  ASSERT_EQ(uncompress(reinterpret_cast<Bytef*>(out.data()), &n,
                       reinterpret_cast<const Bytef*>(packed.data()), packed.size()),
            Z_OK);
  EXPECT_EQ(n, data.size());
  EXPECT_EQ(out, data);
}

TEST(CodecTools, ZstdOutputDecodesWithZstdCliAndLibrary) {
  fs::page_pool pool;
  const auto data = text_bytes((5u << 20) + 1);
  const auto packed = packed_bytes(pool, data, coding::zstd);
  const std::string zs = tmpdir() + "/out.zst";
  write_file(zs, packed);
  ASSERT_EQ(std::system(("zstd -q -d -f " + zs + " -o " + tmpdir() + "/out.raw").c_str()), 0);
  EXPECT_EQ(read_file(tmpdir() + "/out.raw"), data);

  std::vector<std::byte> out(data.size() + 1);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), packed.data(), packed.size());
  ASSERT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(n);
  EXPECT_EQ(out, data);
}

TEST(CodecTools, DecodesWhatGzipCliAndZstdCliProduce) {
  fs::page_pool pool;
  const auto data = text_bytes(777777);
  write_file(tmpdir() + "/in.txt", data);
  ASSERT_EQ(std::system(("gzip -k -f -9 " + tmpdir() + "/in.txt").c_str()), 0);
  ASSERT_EQ(std::system(("zstd -q -f -19 " + tmpdir() + "/in.txt").c_str()), 0);
  fs::chain out;
  ASSERT_FALSE(filters::decompress(to_chain(pool, read_file(tmpdir() + "/in.txt.gz")),
                                   {coding::gzip}, pool, out));
  EXPECT_EQ(to_bytes(out), data);
  ASSERT_FALSE(filters::decompress(to_chain(pool, read_file(tmpdir() + "/in.txt.zst")),
                                   {coding::zstd}, pool, out));
  EXPECT_EQ(to_bytes(out), data);
}

TEST(CodecLimits, ZstdFrameDeclaringA512MiBWindowIsRefused) {
  fs::page_pool pool;
  // Frame header: magic, descriptor 0 (no size, no checksum), window descriptor exponent 19
  // (2^(10+19) = 512 MiB), then one last raw block of one byte.
  const std::vector<std::byte> frame = {
      std::byte{0x28}, std::byte{0xb5}, std::byte{0x2f}, std::byte{0xfd}, std::byte{0x00},
      std::byte{0x98}, std::byte{0x09}, std::byte{0x00}, std::byte{0x00}, std::byte{'x'}};
  // The frame is valid: zstd's library decodes it when allowed a 512 MiB window.
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, 29);
  char out[8];
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  ZSTD_outBuffer o{out, sizeof out, 0};
  EXPECT_FALSE(ZSTD_isError(ZSTD_decompressStream(d, &o, &in)));
  EXPECT_EQ(o.pos, 1u);
  ZSTD_freeDCtx(d);

  const auto before = pool.stats().pages_in_use;
  fs::chain result;
  const auto ec = filters::decompress(to_chain(pool, frame), {coding::zstd}, pool, result);
  EXPECT_EQ(ec, filters::errc::window_too_large) << ec.message();
  EXPECT_EQ(pool.stats().pages_in_use, before);
}

TEST(CodecLimits, GzipAndZstdBombsStopAtTheOutputCap) {
  fs::page_pool pool;
  const std::vector<std::byte> zeros(64u << 20);
  for (coding kind : {coding::gzip, coding::zstd}) {
    fs::chain packed;
    ASSERT_FALSE(filters::compress(to_chain(pool, zeros), {kind, 9}, pool, packed));
    EXPECT_LT(packed.size(), 1u << 20);  // a small input...
    auto bomb = to_bytes(packed);
    packed.clear();
    std::error_code ec;
    filters::decoder_options o{kind};
    o.max_output = 1u << 20;
    auto dec = filters::make_decoder(o, ec);
    ASSERT_TRUE(dec);
    filters::page_writer w(pool);
    std::size_t consumed = 0;
    ec = dec->decode(bomb, w, ~std::size_t{0}, consumed);
    EXPECT_EQ(ec, filters::errc::output_limit) << filters::coding_name(kind);
    // ...stopped within one page past the cap, however much it would have produced.
    EXPECT_LE(w.pending(), (1u << 20) + 4 * fs::kPageSize);
    EXPECT_LE(dec->produced(), (1u << 20) + 128 * 1024);
  }
}

TEST(CodecLimits, TruncatedGzipIsAnError) {
  fs::page_pool pool;
  auto packed = packed_bytes(pool, text_bytes(100000), coding::gzip);
  packed.resize(packed.size() - 5);
  fs::chain out;
  EXPECT_EQ(filters::decompress(to_chain(pool, packed), {coding::gzip}, pool, out),
            filters::errc::truncated);
  packed[20] ^= std::byte{0xff};
  const auto ec = filters::decompress(to_chain(pool, packed), {coding::gzip}, pool, out);
  EXPECT_TRUE(ec == filters::errc::corrupt_data || ec == filters::errc::truncated) << ec.message();
}

TEST(CodecOptions, BadOptionsAreRefused) {
  std::error_code ec;
  EXPECT_FALSE(filters::make_encoder({coding::gzip, 12}, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
  EXPECT_FALSE(filters::make_encoder({coding::identity}, ec));
  EXPECT_EQ(ec, std::errc::invalid_argument);
}

}  // namespace
}  // namespace pwtest
