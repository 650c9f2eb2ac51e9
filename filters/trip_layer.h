#pragma once

/// trip_layer: the write side shared by the layers that transform what is written
/// (content_filter: compression; tls_layer: records). Such a layer serves one write at a
/// time and sends its output below in trips, each with the same write_request: the layer's
/// completion action returns keep between trips and done after the last, so the memory a
/// write holds stays bounded whatever its size. File ranges in the input are read through
/// fs::page_cache a piece at a time (the pages are shared, not copied) and take the range's
/// place at the front of the input.
///
/// A derived layer implements pump() (turn input into output until a trip is ready, then
/// send_trip(); or abort_write()) and on_trip_done() (map the bytes below to the input
/// bytes the trip carried, then finish the write or pump the next trip).
/// Threading and lifetime: see stream.h; everything runs on the loop thread of context().

#include <cstdint>
#include <memory>
#include <system_error>

#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/stream.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_cache.h>
#include <pagewire/runtime/completion_stack.h>

namespace pagewire::filters {

class trip_layer : public layer {
 protected:
  explicit trip_layer(std::unique_ptr<stream> lower) noexcept;

  /// Takes `r` as the write in flight: its data becomes in_, the counters start over and
  /// the layer's completion action goes on the request. False, with `r` completed with
  /// errc::busy when a write is in flight already, or with the error that broke the writes.
  bool begin_write(write_request& r);
  /// A write failed in a way that leaves the layer's output stream broken (input it took
  /// never went below, or cannot go below on its own): every later write completes with
  /// `ec` and sends nothing, and start_shutdown() should call shutdown_broken().
  void break_writes(std::error_code ec) noexcept { write_error_ = ec; }
  bool writes_broken() const noexcept { return static_cast<bool>(write_error_); }
  /// Shuts the layer below down, so that the peer's stream ends (where it ends, the peer
  /// reads a truncated stream: no end of member, no close_notify), then completes `w` with
  /// the error that broke the writes, whatever the layer below answered.
  void shutdown_broken(done_waiter& w);
  /// Reads the first min(size, max) bytes of the file range at in_'s front through `cache`;
  /// once they stand in for those bytes of the range, pump() runs. A file that now ends
  /// before them gives what it holds; the write aborts instead with errc::no_page_cache (no
  /// cache), the cache's error, or errc::truncated (the file holds none of them).
  void read_file_front(fs::page_cache* cache, std::uint64_t max);
  /// Sends what `out` produced below as the next trip of the write (taken into the request's
  /// data, whose storage `out` keeps); `last`: the write's final trip (it carries the write's
  /// own more flag, every other trip says more).
  void send_trip(page_writer& out, bool last);
  /// Ends the write with `ec`: on_trip_done() runs with aborting_ set.
  void abort_write(std::error_code ec);

  /// Produces output from in_ until a trip is ready and sends it (or aborts the write).
  virtual void pump() = 0;
  /// The completion action of each trip below (result: the bytes below or -errno).
  virtual runtime::action_result on_trip_done(int result) = 0;

  // The write in flight.
  write_request* wreq_ = nullptr;
  fs::chain in_;                // input not yet consumed
  std::uint64_t in_total_ = 0;  // bytes of the write
  std::uint64_t in_done_ = 0;   // input whose output has been sent below
  std::uint64_t trip_in_ = 0;   // input consumed by the trip in flight
  bool more_ = false;           // the write's write_flags::more
  bool aborting_ = false;       // abort_write() ended it
  bool last_trip_ = false;      // the trip in flight is the write's last

 private:
  struct write_action final : runtime::completion_action {
    trip_layer* self = nullptr;
    runtime::action_result on_complete(runtime::operation& op, int& result, bool) override;
  };
  struct file_reader final : fs::detail::range_waiter {
    trip_layer* self = nullptr;
  };
  static void on_file_pages(fs::detail::range_waiter* w, std::error_code ec, fs::chain pages);

  struct broken_shutdown final : done_waiter {
    trip_layer* self = nullptr;
    done_waiter* app = nullptr;
  };

  write_action action_;
  file_reader file_reader_;
  std::uint64_t file_want_ = 0;
  std::error_code write_error_;  // break_writes()
  broken_shutdown broken_shutdown_;
};

}  // namespace pagewire::filters
