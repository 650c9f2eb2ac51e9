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
/// output), so the reserve()/commit() calls that produce those n bytes cannot fail.
///
/// Ownership: holds page_refs only. Threading: one thread at a time. Errors: reserve()
/// returns an empty span, and ensure() false, when the pool refuses a page.

#include <cstddef>
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
    while (room < n) {
      fs::page_ref p = pool_->allocate();
      if (!p) return false;
      spare_.push_back(std::move(p));
      room += fs::kPageSize;
    }
    return true;
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
