#pragma once

/// file_range: {shared open file, 64-bit offset, 64-bit length}, bytes that stay in the kernel's
/// page cache and can be spliced or sent without entering user space. Copying shares the file
/// handle (shared_ptr); split and trim adjust numbers only. A value type; the file it names is
/// immutable and thread-safe.

#include <cassert>
#include <cstdint>
#include <memory>

#include <pagewire/fs/file.h>

namespace pagewire::fs {

class file_range {
 public:
  file_range() noexcept = default;
  /// Bytes [offset, offset + length) of `f`. Not checked against the file's size: a file may
  /// grow or shrink; the sender reports a short transfer.
  file_range(std::shared_ptr<const file> f, std::uint64_t offset, std::uint64_t length) noexcept
      : file_(std::move(f)), offset_(offset), size_(length) {}

  const std::shared_ptr<const file>& handle() const noexcept { return file_; }
  int fd() const noexcept { return file_ ? file_->fd() : -1; }
  std::uint64_t offset() const noexcept { return offset_; }
  std::uint64_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  file_range share(std::uint64_t off, std::uint64_t len) const noexcept {
    assert(off + len <= size_);
    return file_range(file_, offset_ + off, len);
  }
  /// Detaches the first n bytes (n <= size()); this keeps the rest.
  file_range split(std::uint64_t n) noexcept {
    assert(n <= size_);
    file_range front(file_, offset_, n);
    trim_front(n);
    return front;
  }
  void trim_front(std::uint64_t n) noexcept {
    assert(n <= size_);
    offset_ += n;
    size_ -= n;
  }
  void trim_back(std::uint64_t n) noexcept {
    assert(n <= size_);
    size_ -= n;
  }

  /// True when `next` names the same file and starts where this ends.
  bool adjacent(const file_range& next) const noexcept {
    return file_ == next.file_ && offset_ + size_ == next.offset_;
  }
  bool merge(const file_range& next) noexcept {
    if (!adjacent(next)) return false;
    size_ += next.size_;
    return true;
  }

 private:
  std::shared_ptr<const file> file_;
  std::uint64_t offset_ = 0;
  std::uint64_t size_ = 0;
};

}  // namespace pagewire::fs
