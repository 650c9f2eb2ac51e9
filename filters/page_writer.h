#pragma once

/// page_writer: where filters put bytes they produce (compressed output, ciphertext,
/// plaintext out of TLS): fresh pages from a page_pool, appended to a chain as slices.
/// reserve() gives the free tail of the current page (a new page when it is full),
/// commit(n) makes n bytes of it part of the output. Producing into the reserved span is
/// how zlib/zstd/OpenSSL write output, so nothing is copied here. One page is partly
/// filled at a time; take() hands the output chain over and keeps filling the same page
/// after the taken bytes (the slices never overlap).
///
/// A producer that must not stop half-way (a TLS record sealed across pages) first calls
/// ensure(n): it takes from the pool every page the next n bytes need (kept aside, not yet
/// output), so the reserve()/commit() calls that produce those n bytes cannot fail. Those
/// pages are used in address order, and reserve_run() offers the ones that lie back to back
/// in memory as one span (one cipher call instead of one per page; each page stays its own
/// slice in the output).
///
/// Ownership: holds page_refs only. Threading: one thread at a time. Errors: reserve()
/// returns an empty span, and ensure() false, when the pool refuses a page.

#include <algorithm>
#include <cstddef>
#include <functional>
#include <span>
#include <vector>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>

namespace pagewire::filters {

class page_writer {
 public:
  explicit page_writer(fs::page_pool& pool) noexcept : pool_(&pool) {}

  /// Writable bytes at the end of the output (at least 1 unless the pool is exhausted).
  std::span<std::byte> reserve() {
    if (!page_ || used_ == fs::kPageSize) {
      flush_page();
      if (!spare_.empty()) {
        page_ = std::move(spare_.back());
        spare_.pop_back();
      } else {
        page_ = pool_->allocate();
      }
      used_ = 0;
      start_ = 0;
      if (!page_) return {};
    }
    return {page_.data() + used_, fs::kPageSize - used_};
  }
  /// Makes the next n bytes writable by reserve()/commit() whatever the pool does later:
  /// false (and the output unchanged) when the pool refused a page.
  bool ensure(std::size_t n) {
    std::size_t room = page_ ? fs::kPageSize - used_ : 0;
    room += spare_.size() * fs::kPageSize;
    if (room >= n) return true;  // spare_ is still in order: pages only left its back
    while (room < n) {
      fs::page_ref p = pool_->allocate();
      if (!p) break;
      spare_.push_back(std::move(p));
      room += fs::kPageSize;
    }
    // Highest address first: reserve() takes from the back, so pages go out in address
    // order (the pool's free list hands them out in reverse).
    std::sort(spare_.begin(), spare_.end(), [](const fs::page_ref& a, const fs::page_ref& b) {
      return std::greater<const std::byte*>()(a.data(), b.data());
    });
    return room >= n;
  }
  /// Leaves a gap (never output: the slice ends before it, the next starts after it) so that
  /// the next byte produced lands at a page offset congruent to `rem` modulo `mod` (a power
  /// of two dividing the page size, rem < mod). Needs ensure() room for the gap too.
  void align(std::size_t mod, std::size_t rem) {
    if (reserve().empty()) return;
    const std::size_t gap = (rem - used_) & (mod - 1);
    if (gap == 0) return;
    flush_page();
    if (used_ + gap < fs::kPageSize) {
      used_ = start_ = used_ + gap;
      return;
    }
    used_ = fs::kPageSize;  // the rest of this page is the gap
    start_ = used_;
    if (reserve().empty()) return;
    used_ = start_ = rem;
  }
  /// Like reserve(), extended over the set-aside pages that follow it directly in memory;
  /// at most `max` bytes. Produce into it, then commit_run().
  std::span<std::byte> reserve_run(std::size_t max) {
    const std::span<std::byte> first = reserve();
    std::size_t n = first.size();
    const std::byte* end = first.data() + n;
    for (auto it = spare_.rbegin(); n < max && it != spare_.rend() && it->data() == end; ++it) {
      n += fs::kPageSize;
      end += fs::kPageSize;
    }
    return {first.data(), std::min(n, max)};
  }
  /// Appends the first n bytes of the last reserve_run() to the output.
  void commit_run(std::size_t n) {
    for (;;) {
      const std::size_t k = std::min(n, fs::kPageSize - used_);
      used_ += k;
      n -= k;
      if (n == 0) return;
      flush_page();
      page_ = std::move(spare_.back());
      spare_.pop_back();
      used_ = start_ = 0;
    }
  }
  /// Appends the first n bytes of the last reserve() to the output.
  void commit(std::size_t n) noexcept { used_ += n; }
  /// Bytes produced and not yet taken.
  std::size_t pending() const noexcept { return out_.size() + (used_ - start_); }
  /// The output produced since the last take().
  fs::chain take() {
    flush_page();
    fs::chain c = std::move(out_);
    out_.clear();
    return c;
  }
  /// Like take(), into `dst` (emptied first), whose storage the writer keeps for its next
  /// output: passing the same chain every time allocates no chain storage once both grew.
  void take_into(fs::chain& dst) {
    flush_page();
    dst.clear();
    dst.swap(out_);
  }
  fs::page_pool& pool() noexcept { return *pool_; }

 private:
  void flush_page() {
    if (used_ > start_) {
      out_.append(fs::slice(page_, start_, used_ - start_));
      start_ = used_;
    }
  }

  fs::page_pool* pool_;
  fs::page_ref page_;
  std::size_t used_ = 0;   // bytes of page_ written
  std::size_t start_ = 0;  // bytes of page_ already in out_ or taken
  fs::chain out_;
  std::vector<fs::page_ref> spare_;  // pages ensure() took, used before the pool's
};

}  // namespace pagewire::filters
