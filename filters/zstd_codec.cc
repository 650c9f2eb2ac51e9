#include <algorithm>
#include <array>

#include <zstd.h>
#include <zstd_errors.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/zstd_codec.h>

namespace pagewire::filters {
namespace {

class zstd_encoder final : public encoder {
 public:
  ~zstd_encoder() override { ZSTD_freeCCtx(c_); }
  std::error_code init(const encoder_options& o) {
    c_ = ZSTD_createCCtx();
    if (!c_) return std::make_error_code(std::errc::not_enough_memory);
    const int level = o.level < 0 ? 3 : o.level;
    if (level > ZSTD_maxCLevel()) return std::make_error_code(std::errc::invalid_argument);
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c_, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c_, ZSTD_c_checksumFlag, 1)) ||
        (o.window_bits != 0 &&
         ZSTD_isError(ZSTD_CCtx_setParameter(c_, ZSTD_c_windowLog, o.window_bits)))) {
      return std::make_error_code(std::errc::invalid_argument);
    }
    return {};
  }

  std::error_code encode(std::span<const std::byte> in, flush f, page_writer& out,
                         std::size_t out_limit, std::size_t& consumed, bool& finished) override {
    ZSTD_inBuffer zin{in.data(), in.size(), 0};
    finished = false;
    const std::size_t start = out.pending();
    const ZSTD_EndDirective mode = f == flush::end ? ZSTD_e_end : ZSTD_e_continue;
    std::error_code ec;
    while (out.pending() - start < out_limit) {
      auto space = out.reserve();
      if (space.empty()) {
        ec = errc::pool_exhausted;
        break;
      }
      ZSTD_outBuffer zout{space.data(), space.size(), 0};
      const std::size_t left = ZSTD_compressStream2(c_, &zout, &zin, mode);
      out.commit(zout.pos);
      if (ZSTD_isError(left)) {
        ec = errc::corrupt_data;
        break;
      }
      if (mode == ZSTD_e_end && left == 0) {
        finished = true;
        break;
      }
      if (mode == ZSTD_e_continue && zin.pos == zin.size && zout.pos < zout.size) break;
    }
    consumed = zin.pos;
    return ec;
  }
  std::error_code start_cut_member(page_writer& out) override {
    ZSTD_CCtx_reset(c_, ZSTD_reset_session_only);
    // libzstd writes a frame header only with the frame's first block (ZSTD_e_flush with no
    // input writes nothing), so it is spelled here (RFC 8878 3.1.1): the magic number, a
    // descriptor (checksum, no content size), a window descriptor (1 KiB).
    static constexpr std::array<std::byte, 6> kHeader{std::byte{0x28}, std::byte{0xb5},
                                                      std::byte{0x2f}, std::byte{0xfd},
                                                      std::byte{0x04}, std::byte{0x00}};
    for (std::size_t i = 0; i < kHeader.size();) {
      auto space = out.reserve();
      if (space.empty()) return errc::pool_exhausted;
      const std::size_t n = std::min(space.size(), kHeader.size() - i);
      std::copy_n(kHeader.begin() + static_cast<std::ptrdiff_t>(i), n, space.begin());
      out.commit(n);
      i += n;
    }
    return {};
  }
  coding kind() const noexcept override { return coding::zstd; }

 private:
  ZSTD_CCtx* c_ = nullptr;
};

class zstd_decoder final : public decoder {
 public:
  explicit zstd_decoder(const decoder_options& o) : max_output_(o.max_output) {}
  ~zstd_decoder() override { ZSTD_freeDCtx(d_); }
  std::error_code init(const decoder_options& o) {
    d_ = ZSTD_createDCtx();
    if (!d_) return std::make_error_code(std::errc::not_enough_memory);
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d_, ZSTD_d_windowLogMax, o.zstd_window_log_max))) {
      return std::make_error_code(std::errc::invalid_argument);
    }
    return {};
  }

  std::error_code decode(std::span<const std::byte> in, page_writer& out, std::size_t out_limit,
                         std::size_t& consumed) override {
    ZSTD_inBuffer zin{in.data(), in.size(), 0};
    const std::size_t start = out.pending();
    std::error_code ec;
    while (out.pending() - start < out_limit) {
      auto space = out.reserve();
      if (space.empty()) {
        ec = errc::pool_exhausted;
        break;
      }
      // Room for one byte past max_output, to tell that the content goes on beyond it.
      const std::uint64_t room = max_output_ - produced_;
      const bool near_limit = room < space.size();
      if (near_limit) space = space.first(room + 1);
      ZSTD_outBuffer zout{space.data(), space.size(), 0};
      // Input goes in one byte at a time in two places, so that the outcome does not depend
      // on how the input was cut:
      // - a frame's first bytes (a whole header). Given more, libzstd may leave its streaming
      //   path: with a whole frame at hand it takes a one-shot path that refuses frames the
      //   streaming path accepts (a zero-size compressed block, a content size an empty last
      //   block leaves short), and after a header it cannot parse it looks for a legacy
      //   (pre-1.0) frame in that call's bytes alone;
      // - near max_output. After filling the output, libzstd goes on reading block headers
      //   that need no room (empty blocks), and an error it meets there returns without
      //   telling what it wrote: corrupt_data for bytes at hand in one call, output_limit
      //   for the same bytes arriving later. One byte per call stops it at the output.
      const bool bytewise = frame_in_ < kHeaderMax || near_limit;
      zin.size = bytewise && zin.pos < in.size() ? zin.pos + 1 : in.size();
      const std::size_t in_before = zin.pos;
      const std::size_t r = ZSTD_decompressStream(d_, &zout, &zin);
      // Keep the frame's first bytes: they tell the content size it declared.
      for (std::size_t i = in_before; i < zin.pos && frame_in_ < kHeaderMax; ++i)
        head_[frame_in_++] = in[i];
      frame_out_ += zout.pos;
      const std::size_t kept = zout.pos < room ? zout.pos : room;
      out.commit(kept);
      produced_ += kept;
      if (ZSTD_isError(r)) {
        ec = ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge
                 ? errc::window_too_large
                 : errc::corrupt_data;
        break;
      }
      if (declared_ == kNotYet && frame_in_ > 0) {
        declared_ = ZSTD_getFrameContentSize(head_.data(), frame_in_);  // kNotYet: header partial
        // libzstd checks the declared size only once the last block is whole: at hand in
        // one call, a last raw block too large or too small is corrupt before any of it is
        // handed out, while given a byte at a time it is handed out as it comes and may
        // first run past max_output. Deciding here, before the frame's first output byte and
        // from its header alone, ends both ways the same: a frame declaring more than is
        // left of max_output is over the limit whatever its blocks hold.
        if (declares_size() && declared_ > max_output_ - produced_) {
          ec = errc::output_limit;
          break;
        }
      }
      // Past the size it declared (so never past max_output first): corrupt, as libzstd
      // would find at the last block, before it hands out more.
      if (declares_size() && frame_out_ > declared_) {
        ec = errc::corrupt_data;
        break;
      }
      if (zout.pos > room) {
        ec = errc::output_limit;
        break;
      }
      if (r == 0) {
        // libzstd's streaming path lets a frame end short of the size its header declared
        // (an empty last block); its one-shot path and RFC 8878 do not.
        if (declares_size() && declared_ != frame_out_) {
          ec = errc::corrupt_data;
          break;
        }
        boundary_ = true;
        frame_in_ = 0;
        frame_out_ = 0;
        declared_ = kNotYet;
      } else if (zin.pos != in_before || zout.pos != 0) {
        boundary_ = false;
      }
      if (zin.pos == in.size() && zout.pos < zout.size) break;
    }
    consumed = zin.pos;
    return ec;
  }
  bool at_boundary() const noexcept override { return boundary_; }
  std::uint64_t produced() const noexcept override { return produced_; }

 private:
  std::uint64_t max_output_;
  std::uint64_t produced_ = 0;
  ZSTD_DCtx* d_ = nullptr;
  bool boundary_ = true;
  static constexpr std::size_t kHeaderMax = 18;  // ZSTD_FRAMEHEADERSIZE_MAX
  std::size_t frame_in_ = 0;                     // bytes of the current frame taken, to 18
  std::array<std::byte, kHeaderMax> head_{};     // those bytes: the frame header
  std::uint64_t frame_out_ = 0;                  // bytes the current frame decoded to
  static constexpr unsigned long long kNotYet = ZSTD_CONTENTSIZE_ERROR;  // header partial
  unsigned long long declared_ = kNotYet;  // its content size, or ZSTD_CONTENTSIZE_UNKNOWN
  bool declares_size() const noexcept {
    return declared_ != kNotYet && declared_ != ZSTD_CONTENTSIZE_UNKNOWN;
  }
};

}  // namespace

std::unique_ptr<encoder> make_zstd_encoder(const encoder_options& o, std::error_code& ec) {
  auto e = std::make_unique<zstd_encoder>();
  if ((ec = e->init(o))) return nullptr;
  return e;
}

std::unique_ptr<decoder> make_zstd_decoder(const decoder_options& o, std::error_code& ec) {
  auto d = std::make_unique<zstd_decoder>(o);
  if ((ec = d->init(o))) return nullptr;
  return d;
}

}  // namespace pagewire::filters
