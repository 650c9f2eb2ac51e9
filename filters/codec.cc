#include <pagewire/filters/codec.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/zlib_codec.h>
#include <pagewire/filters/zstd_codec.h>

namespace pagewire::filters {

std::string_view coding_name(coding c) noexcept {
  switch (c) {
    case coding::identity:
      return "identity";
    case coding::gzip:
      return "gzip";
    case coding::deflate:
      return "deflate";
    case coding::zstd:
      return "zstd";
  }
  return "?";
}

std::unique_ptr<encoder> make_encoder(const encoder_options& o, std::error_code& ec) {
  ec.clear();
  switch (o.kind) {
    case coding::gzip:
    case coding::deflate:
      return make_zlib_encoder(o, ec);
    case coding::zstd:
      return make_zstd_encoder(o, ec);
    case coding::identity:
      break;
  }
  ec = std::make_error_code(std::errc::invalid_argument);
  return nullptr;
}

std::unique_ptr<decoder> make_decoder(const decoder_options& o, std::error_code& ec) {
  ec.clear();
  switch (o.kind) {
    case coding::gzip:
    case coding::deflate:
      return make_zlib_decoder(o, ec);
    case coding::zstd:
      return make_zstd_decoder(o, ec);
    case coding::identity:
      break;
  }
  ec = std::make_error_code(std::errc::invalid_argument);
  return nullptr;
}

namespace {
constexpr std::size_t kNoLimit = ~std::size_t{0};
}

std::error_code compress(const fs::chain& in, const encoder_options& o, fs::page_pool& pool,
                         fs::chain& out) {
  std::error_code ec;
  auto enc = make_encoder(o, ec);
  if (!enc) return ec;
  page_writer w(pool);
  std::size_t consumed = 0;
  bool finished = false;
  for (const fs::segment& s : in.segments()) {
    if (!fs::is_memory(s)) return std::make_error_code(std::errc::invalid_argument);
    auto bytes = std::get<fs::slice>(s).bytes();
    if ((ec = enc->encode(bytes, encoder::flush::none, w, kNoLimit, consumed, finished))) {
      return ec;
    }
  }
  while (!finished) {
    if ((ec = enc->encode({}, encoder::flush::end, w, kNoLimit, consumed, finished))) return ec;
  }
  out = w.take();
  return {};
}

std::error_code decompress(const fs::chain& in, const decoder_options& o, fs::page_pool& pool,
                           fs::chain& out) {
  std::error_code ec;
  auto dec = make_decoder(o, ec);
  if (!dec) return ec;
  page_writer w(pool);
  std::size_t consumed = 0;
  for (const fs::segment& s : in.segments()) {
    if (!fs::is_memory(s)) return std::make_error_code(std::errc::invalid_argument);
    if ((ec = dec->decode(std::get<fs::slice>(s).bytes(), w, kNoLimit, consumed))) return ec;
  }
  if (!dec->at_boundary()) return errc::truncated;
  out = w.take();
  return {};
}

}  // namespace pagewire::filters
