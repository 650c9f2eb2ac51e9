#pragma once

/// page_window: the source's memory window held in pool pages, so pagewire paths can send
/// it as chains of shared slices. fill() copies the window into pages once, before timing
/// (the copy a sender would have made when it produced the data); share() is then
/// refcounts only. Owned by one sender; not thread-safe.

#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>

namespace zcbench {

class page_window {
 public:
  /// Copies `memory` into pages from `pool`; ENOMEM when the pool runs out.
  std::error_code fill(pagewire::fs::page_pool& pool, std::span<const std::byte> memory);

  /// Appends views of the stream's bytes [offset, offset + n), wrapping around the window,
  /// to `out`.
  void share(std::uint64_t offset, std::uint64_t n, pagewire::fs::chain& out) const;

 private:
  std::vector<pagewire::fs::slice> pages_;
  std::uint64_t bytes_ = 0;
};

}  // namespace zcbench
