#pragma once

/// The page slices of the last small bodies a worker served from its page cache, so the
/// next request for the same bytes of the same file shares them (one refcount increment
/// per page) instead of looking every page up again (one hash probe per page). Keyed by
/// the open `file` object and the byte range: the open-file cache hands out a new object
/// when a file changes (revalidated every second), so a changed file misses here and is
/// looked up afresh; a remembered body is never newer or older than the file object it
/// was read for.
///
/// Direct-mapped, kEntries slots of up to kMaxPages slices each: a new body evicts the
/// one in its slot. Remembered slices keep their pages (at most kEntries * kMaxPages
/// pages, held out of the page cache's eviction) and their file open until evicted or
/// the worker ends.
///
/// Ownership: holds shares of the pages and of the files. Threading: one per worker
/// thread, no locking. Errors: none.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/slice.h>

namespace pagewire::sendfile_server {

class resident_bodies {
 public:
  static constexpr std::size_t kEntries = 16;
  static constexpr std::size_t kMaxPages = 17;  // 64 KiB starting anywhere in a page

  /// Appends the remembered slices of bytes [offset, offset + length) of `f` to `out`;
  /// false (nothing appended) when that body is not remembered.
  bool append(const fs::file& f, std::uint64_t offset, std::uint64_t length, fs::chain& out) const;
  /// Remembers `pages` (in order, covering exactly the body; at most kMaxPages) as the
  /// body [offset, offset + length) of `f`.
  void remember(const std::shared_ptr<const fs::file>& f, std::uint64_t offset,
                std::uint64_t length, std::span<const fs::slice> pages);

 private:
  struct entry {
    std::shared_ptr<const fs::file> file;  // keeps the key's address from being reused
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    std::size_t count = 0;
    std::array<fs::slice, kMaxPages> pages;
  };
  static std::size_t slot_of(const fs::file& f, std::uint64_t offset) noexcept;

  std::array<entry, kEntries> entries_;
};

}  // namespace pagewire::sendfile_server
