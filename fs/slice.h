#pragma once

/// slice: {page reference, pointer, length}, a read-only view of bytes inside one pooled page
/// (or of static memory). Copying or sharing bumps the page's refcount; split and trim adjust
/// offsets. No operation here copies a byte or allocates.
///
/// Ownership: a slice keeps its page alive; the page returns to its pool when the last slice or
/// page_ref goes. Threading: a slice is a value; distinct slices of one page may live on
/// different threads (the refcount is atomic). Preconditions (offsets within bounds) are checked
/// with assert; violating them in release builds is undefined.

#include <cassert>
#include <cstddef>
#include <span>

#include <pagewire/fs/page_pool.h>

namespace pagewire::fs {

class slice {
 public:
  slice() noexcept = default;

  /// View of bytes [offset, offset + length) of page `p`; offset + length <= kPageSize.
  slice(page_ref p, std::size_t offset, std::size_t length) noexcept
      : page_(std::move(p)), data_(page_.data() + offset), size_(length) {
    assert(offset + length <= kPageSize);
  }

  /// View of memory that outlives every slice (string literals, static tables); no refcount.
  static slice from_static(const void* data, std::size_t length) noexcept {
    slice s;
    s.data_ = static_cast<const std::byte*>(data);
    s.size_ = length;
    return s;
  }

  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  /// The page this slice holds; empty for static slices.
  const page_ref& page() const noexcept { return page_; }
  /// Fixed-buffer index of the page's arena, or -1 (unregistered or static).
  int buffer_index() const noexcept { return page_ ? page_->buffer_index() : -1; }
  /// Offset of data() within its page (0 for static slices).
  std::size_t page_offset() const noexcept {
    return page_ ? static_cast<std::size_t>(data_ - page_.data()) : 0;
  }

  /// Another view of the same bytes (one refcount increment).
  slice share() const noexcept { return *this; }
  /// View of [off, off + len) of this slice; off + len <= size().
  slice share(std::size_t off, std::size_t len) const noexcept {
    assert(off + len <= size_);
    slice s(*this);
    s.data_ += off;
    s.size_ = len;
    return s;
  }
  /// Detaches the first n bytes (n <= size()) as a new slice; this keeps the rest. The two
  /// never overlap.
  slice split(std::size_t n) noexcept {
    assert(n <= size_);
    slice front = share(0, n);
    trim_front(n);
    return front;
  }
  /// Drops the first n bytes (n <= size()).
  void trim_front(std::size_t n) noexcept {
    assert(n <= size_);
    data_ += n;
    size_ -= n;
  }
  /// Drops the last n bytes (n <= size()).
  void trim_back(std::size_t n) noexcept {
    assert(n <= size_);
    size_ -= n;
  }

  /// True when `next` starts right where this ends, on the same page (or both static).
  bool adjacent(const slice& next) const noexcept {
    return page_ == next.page_ && data_ + size_ == next.data_;
  }
  /// Extends this over `next` when adjacent; returns whether it did.
  bool merge(const slice& next) noexcept {
    if (!adjacent(next)) return false;
    size_ += next.size_;
    return true;
  }

 private:
  page_ref page_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace pagewire::fs
