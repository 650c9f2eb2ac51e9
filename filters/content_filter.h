#pragma once

/// content_filter: a stream layer that compresses what is written (gzip, deflate, zstd)
/// and decompresses what is read, each side optional. An inactive side costs one branch:
/// the chain passes to the layer below untouched, file ranges included, so a plain body
/// still leaves by splice/sendfile.
///
/// Write side: one write is encoded in trips of at most `piece_bytes` of input and
/// `output_limit` bytes of output, each sent below with the same write_request (the
/// layer's action returns keep between trips), so memory stays bounded whatever the
/// write's size. File ranges are read through fs::page_cache (the pages are shared, not
/// copied). A write with write_flags::end_of_message ends the gzip member / zstd frame
/// (the message is complete and decodable on its own); with write_flags::more output may
/// lag. The write completes with the bytes of input consumed. A write that fails leaves the
/// member broken (the encoder took input whose output never went below): later writes fail
/// with the same error and send nothing, shutdown() ends the stream below without the
/// member's end (the peer reads errc::truncated; when no byte of that member had gone below,
/// e.g. a file emptied after it was opened, the start of a member that never ends goes first,
/// pool pages permitting, so that the peer does not read a clean end on a boundary) and
/// reports that error, and the connection is to be closed.
///
/// Read side: each read returns at most `read_output_limit` decoded bytes; the decoder's
/// caps (decoder_options: max_output, zstd window) bound a bomb. The stream ending inside
/// a member/frame is errc::truncated; on a boundary errc::eof.
///
/// Copies: none counted. The codecs read input slices in place (slices back to back in
/// memory as one span, so one codec call per run of pages) and write their output
/// (produced, not copied) into pool pages.
/// Threading and lifetime: see stream.h. Errors: filters::errc, or the layer below's.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <pagewire/filters/codec.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/trip_layer.h>
#include <pagewire/fs/page_cache.h>

namespace pagewire::filters {

struct content_filter_options {
  /// Write side coding; nullopt (or coding::identity) leaves writes untouched.
  std::optional<encoder_options> encode;
  /// Read side coding; nullopt (or coding::identity) leaves reads untouched.
  std::optional<decoder_options> decode;
  /// Input bytes encoded per trip below (file ranges are read this much at a time).
  std::size_t piece_bytes = 256 * 1024;
  /// Output bytes per trip below (the bound on output memory per write).
  std::size_t output_limit = 256 * 1024;
  /// Decoded bytes per read at most.
  std::size_t read_output_limit = 256 * 1024;
};

class content_filter final : public trip_layer {
 public:
  /// `pool` supplies output pages; `cache` (may be null when only memory is written)
  /// supplies file pages. Both outlive the layer. Bad options: `ec` set, layer inactive.
  content_filter(std::unique_ptr<stream> lower, const content_filter_options& options,
                 fs::page_pool& pool, fs::page_cache* cache, std::error_code& ec);
  ~content_filter() override;

  void start_write(write_request& r) override;
  void start_read(read_waiter& w) override;
  void start_shutdown(done_waiter& w) override;
  std::string describe() const override;

  bool encoding() const noexcept { return enc_ != nullptr; }
  bool decoding() const noexcept { return dec_ != nullptr; }

 private:
  struct lower_reader final : read_waiter {
    content_filter* self = nullptr;
  };
  struct trailer_waiter final {
    content_filter* self = nullptr;
  };

  void pump() override;
  void send(bool last);
  runtime::action_result on_trip_done(int result) override;
  void decode_step();
  static void on_lower_read(read_waiter* w, std::error_code ec, fs::chain&& data);
  void deliver_read(std::error_code ec, fs::chain&& data);
  static void on_trailer_sent(void* arg, std::error_code ec, std::uint64_t);

  content_filter_options options_;
  fs::page_cache* cache_;
  std::unique_ptr<encoder> enc_;
  std::unique_ptr<decoder> dec_;

  // write side (the write in flight: trip_layer)
  page_writer wout_;
  bool member_open_ = false;  // bytes encoded since the last end
  bool member_sent_ = false;  // bytes of that member went below: the peer stands inside it

  // read side
  read_waiter* rw_ = nullptr;
  lower_reader lower_reader_;
  fs::chain rin_;
  page_writer rout_;
  fs::chain delivered_;  // the last read's data, handed to the reader by rvalue reference
  bool lower_eof_ = false;
  std::error_code read_error_;

  // shutdown
  done_waiter* sw_ = nullptr;
  std::unique_ptr<callback_write_request> trailer_;
};

}  // namespace pagewire::filters
