#pragma once

/// Where response heads (and other bytes the server generates: multipart part heads,
/// /-/stats JSON, directory listings) are written: the unused tail of one pool page,
/// handed out as refcounted slices. Many heads share a page; the page returns to its
/// pool when the last slice sent from it is released. Heads are written straight into
/// the page; append() copies small generated texts formatted elsewhere (multipart part
/// heads, JSON). File bytes never pass through here.
///
/// The arena keeps kReservePages pages of its own back: when bulk users (on-the-fly
/// compression, the page cache) have taken every page of the pool, heads are written in
/// those, so a response that can still be sent (identity after a failed compression, a 503)
/// gets its head. The reserve is refilled from the pool once the pool has pages again.
///
/// Ownership: the arena holds a reference to its current page and to its reserve; slices hold
/// theirs. Destroy the arena before its pool. Threading: one arena per worker thread.
/// Errors: when the pool and the reserve are both exhausted, reserve() returns an empty span
/// and the caller answers 500 / closes.

#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>

namespace pagewire::sendfile_server {

class head_arena {
 public:
  /// Pages held back for heads while the pool is exhausted (about ten heads each).
  static constexpr std::size_t kReservePages = 4;

  /// Takes the reserve from `pool` (as much of it as the pool has).
  explicit head_arena(fs::page_pool& pool);

  /// Writable space of at least `min` bytes (min <= fs::kPageSize), taking a fresh page
  /// when the current one has less left; empty when no page can be had.
  std::span<char> reserve(std::size_t min);
  /// Marks the first `n` bytes of the last reserve() as used and returns them as a slice.
  fs::slice commit(std::size_t n);

  /// Appends `bytes` to `out` through the arena, across pages when needed. False when
  /// the pool is exhausted (what fitted stays appended).
  bool append(fs::chain& out, std::string_view bytes);

 private:
  fs::page_ref fresh_page();
  void refill();

  fs::page_pool& pool_;
  fs::page_ref page_;
  std::size_t used_ = 0;
  std::array<fs::page_ref, kReservePages> reserve_;
  std::size_t reserved_ = 0;  // reserve_[0, reserved_) hold pages
};

}  // namespace pagewire::sendfile_server
