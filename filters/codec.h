#pragma once

/// Streaming compression engines behind one pair of interfaces: gzip and deflate (zlib),
/// zstd (libzstd). An encoder turns input spans into compressed bytes written straight into
/// pool pages (page_writer); a decoder does the reverse. Both stop when their input is used
/// up or when the output they produced in this call reaches `out_limit`, so a caller
/// bounds memory by choosing how much it asks for at a time. Nothing is copied: the
/// libraries read the caller's slices and write into reserved page space.
///
/// Memory bounds: zlib keeps a 2^window_bits window (<= 32 KiB) plus its hash tables;
/// zstd encoders keep 2^window_log; zstd decoders refuse frames whose window exceeds
/// 2^window_log_max (8 MiB by default; ZSTD_d_windowLogMax) with errc::window_too_large,
/// and every decoder fails with errc::output_limit when the content goes on past max_output
/// bytes in total (it hands out at most max_output), so a small bomb cannot take memory. A zstd
/// frame whose header declares more than is left of max_output fails there, before its first
/// byte; one that goes on past the size it declared is errc::corrupt_data.
/// Corrupt input ends in errc::corrupt_data or errc::truncated, and the same bytes give the
/// same outcome however they are cut into calls (tests/filters/codec_corrupt_input_test).
///
/// Threading: an engine is used by one thread at a time. Errors: filters::errc.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

#include <pagewire/filters/page_writer.h>

namespace pagewire::filters {

/// A content coding (HTTP Content-Encoding names: "gzip", "deflate", "zstd").
enum class coding : std::uint8_t { identity, gzip, deflate, zstd };

std::string_view coding_name(coding c) noexcept;

struct encoder_options {
  coding kind = coding::gzip;
  /// Compression level; -1 picks the codec's default (gzip 6, zstd 3).
  int level = -1;
  /// zlib: log2 of the window, 9..15. zstd: ZSTD_c_windowLog, 0 = the level's default.
  int window_bits = 0;
  /// zlib memLevel, 1..9 (hash table memory).
  int mem_level = 8;
};

struct decoder_options {
  coding kind = coding::gzip;
  /// Total output allowed over the decoder's life; content beyond it: errc::output_limit,
  /// with exactly max_output bytes handed out.
  std::uint64_t max_output = std::uint64_t{128} << 20;
  /// zstd: largest window accepted, as log2 (23 = 8 MiB).
  int zstd_window_log_max = 23;
};

class encoder {
 public:
  enum class flush : std::uint8_t {
    none,  ///< compress as the codec likes; output may lag input
    end,   ///< end the gzip member / zstd frame: call again until `finished`
  };
  virtual ~encoder() = default;
  /// Feeds `in` (with flush::end: the final input, usually empty) and appends output to
  /// `out` until `in` is consumed (and, for end, the member is complete) or the output of
  /// this call reached `out_limit`. `consumed` says how much of `in` was taken; `finished`
  /// is true when an end completed (the next call starts a new member/frame).
  virtual std::error_code encode(std::span<const std::byte> in, flush f, page_writer& out,
                                 std::size_t out_limit, std::size_t& consumed, bool& finished) = 0;
  /// For a stream cut short where a decoder would stand on a boundary (an end there reads as a
  /// clean one): drops the member/frame in progress and appends the start of one that never
  /// ends (gzip/zlib: its header and an empty sync-flush block; zstd: a frame header), so that
  /// a stream ending after it reads as truncated. Encode nothing after it.
  virtual std::error_code start_cut_member(page_writer& out) = 0;
  virtual coding kind() const noexcept = 0;
};

class decoder {
 public:
  virtual ~decoder() = default;
  /// Feeds `in` and appends output to `out` until `in` is consumed and no decoded byte is
  /// left inside the engine, or this call's output reached `out_limit`. Call with an empty
  /// span to drain output held back by the limit. Concatenated members/frames continue.
  virtual std::error_code decode(std::span<const std::byte> in, page_writer& out,
                                 std::size_t out_limit, std::size_t& consumed) = 0;
  /// True when the input so far ends on a member/frame boundary (a clean place to end).
  virtual bool at_boundary() const noexcept = 0;
  /// Bytes produced so far.
  virtual std::uint64_t produced() const noexcept = 0;
};

/// Null and `ec` set on bad options (EINVAL) or when the library cannot allocate.
std::unique_ptr<encoder> make_encoder(const encoder_options& o, std::error_code& ec);
std::unique_ptr<decoder> make_decoder(const decoder_options& o, std::error_code& ec);

/// Whole-buffer helpers over memory chains (request bodies, tests): the input chain
/// (memory slices only) through a fresh engine. Output in pool pages.
std::error_code compress(const fs::chain& in, const encoder_options& o, fs::page_pool& pool,
                         fs::chain& out);
/// A truncated input (not ending on a boundary) is errc::truncated.
std::error_code decompress(const fs::chain& in, const decoder_options& o, fs::page_pool& pool,
                           fs::chain& out);

}  // namespace pagewire::filters
