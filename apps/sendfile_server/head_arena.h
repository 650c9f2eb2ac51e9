#pragma once

/// Where response heads (and other bytes the server generates: multipart part heads,
/// /-/stats JSON, directory listings) are written: the unused tail of one pool page,
/// handed out as refcounted slices. Many heads share a page; the page returns to its
/// pool when the last slice sent from it is released. Heads are written straight into
/// the page; append() copies small generated texts formatted elsewhere (multipart part
/// heads, JSON). File bytes never pass through here.
///
/// Ownership: the arena holds a reference to its current page; slices hold theirs.
/// Threading: one arena per worker thread. Errors: when the pool is exhausted,
/// reserve() returns an empty span and the caller answers 500 / closes.

#include <cstddef>
#include <span>
#include <string_view>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>

namespace pagewire::sendfile_server {

class head_arena {
 public:
  explicit head_arena(fs::page_pool& pool) : pool_(pool) {}

  /// Writable space of at least `min` bytes (min <= fs::kPageSize), taking a fresh page
  /// when the current one has less left; empty when no page can be had.
  std::span<char> reserve(std::size_t min);
  /// Marks the first `n` bytes of the last reserve() as used and returns them as a slice.
  fs::slice commit(std::size_t n);

  /// Appends `bytes` to `out` through the arena, across pages when needed. False when
  /// the pool is exhausted (what fitted stays appended).
  bool append(fs::chain& out, std::string_view bytes);

 private:
  fs::page_pool& pool_;
  fs::page_ref page_;
  std::size_t used_ = 0;
};

}  // namespace pagewire::sendfile_server
