#pragma once

/// chain: an ordered sequence of segments, each a memory slice or a file range; what a response
/// is made of (header slice, file range, trailer slice). Append and prepend merge adjacent
/// neighbours (contiguous bytes of one page, contiguous ranges of one file); split(n) and
/// consume(n) work at any byte boundary; size() is the total. Nothing here copies a byte:
/// copying a chain shares every segment (refcounts only).
///
/// When it holds only memory, a chain is an Asio ConstBufferSequence (begin()/end() yield
/// boost::asio::const_buffer). iovecs() gives the iovec view of a run of memory segments for
/// gather sends. Threading: a value type, no internal locking.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <sys/uio.h>
#include <variant>
#include <vector>

#include <boost/asio/buffer.hpp>

#include <pagewire/fs/file_range.h>
#include <pagewire/fs/slice.h>

namespace pagewire::fs {

namespace asio = boost::asio;

/// One element of a chain: memory or a file range.
using segment = std::variant<slice, file_range>;

/// Bytes in a segment, whichever it is.
inline std::uint64_t segment_size(const segment& s) noexcept {
  return s.index() == 0 ? std::get<0>(s).size() : std::get<1>(s).size();
}
inline bool is_memory(const segment& s) noexcept {
  return s.index() == 0;
}

class chain {
 public:
  /// Iterator for the ConstBufferSequence view; valid only over memory segments.
  class const_iterator {
   public:
    using iterator_category = std::random_access_iterator_tag;
    using value_type = asio::const_buffer;
    using difference_type = std::ptrdiff_t;
    using pointer = const asio::const_buffer*;
    using reference = asio::const_buffer;

    const_iterator() = default;
    asio::const_buffer operator*() const noexcept {
      assert(is_memory(*it_));
      const slice& s = std::get<0>(*it_);
      return asio::const_buffer(s.data(), s.size());
    }
    asio::const_buffer operator[](difference_type n) const noexcept { return *(*this + n); }
    const_iterator& operator++() noexcept { return ++it_, *this; }
    const_iterator operator++(int) noexcept { return const_iterator(it_++); }
    const_iterator& operator--() noexcept { return --it_, *this; }
    const_iterator operator--(int) noexcept { return const_iterator(it_--); }
    const_iterator& operator+=(difference_type n) noexcept { return it_ += n, *this; }
    const_iterator& operator-=(difference_type n) noexcept { return it_ -= n, *this; }
    friend const_iterator operator+(const_iterator a, difference_type n) { return a += n; }
    friend const_iterator operator+(difference_type n, const_iterator a) { return a += n; }
    friend const_iterator operator-(const_iterator a, difference_type n) { return a -= n; }
    friend difference_type operator-(const const_iterator& a, const const_iterator& b) {
      return a.it_ - b.it_;
    }
    friend bool operator==(const const_iterator&, const const_iterator&) = default;
    friend auto operator<=>(const const_iterator&, const const_iterator&) = default;

   private:
    friend class chain;
    explicit const_iterator(std::vector<segment>::const_iterator it) : it_(it) {}
    std::vector<segment>::const_iterator it_;
  };
  using value_type = asio::const_buffer;

  chain() = default;
  /// A chain of one segment (none when it is empty): the common one-piece message.
  explicit chain(slice s) { append(std::move(s)); }
  explicit chain(file_range r) { append(std::move(r)); }
  /// Shares every live segment (refcounts only).
  chain(const chain& o);
  chain(chain&& o) noexcept;
  chain& operator=(const chain& o);
  chain& operator=(chain&& o) noexcept;

  /// Appends; merges with the last segment when adjacent. Empty segments are dropped.
  void append(slice s);
  void append(file_range r);
  void append(segment s);
  /// Moves every segment of `other` to the end (merging at the seam); `other` becomes empty.
  void append(chain&& other);
  /// Inserts at the front (headers); merges with the first segment when adjacent.
  void prepend(slice s);
  void prepend(file_range r);

  /// Detaches the first min(n, size()) bytes as a new chain; this keeps the rest.
  chain split(std::uint64_t n);
  /// Drops the first min(n, size()) bytes (after a partial send); returns how many it dropped.
  std::uint64_t consume(std::uint64_t n);
  void clear() noexcept;
  /// Makes room for `n` live segments in all (no effect when there is room already), so a
  /// caller that knows a response's shape pays one allocation instead of the growth steps.
  /// Capacity travels with the chain when it is moved.
  void reserve(std::size_t n);
  /// Exchanges contents and storage with `o` (pointers only: no segment is moved or touched).
  void swap(chain& o) noexcept;
  friend void swap(chain& a, chain& b) noexcept { a.swap(b); }

  std::uint64_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t segment_count() const noexcept { return segs_.size() - head_; }
  std::span<const segment> segments() const noexcept {
    return {segs_.data() + head_, segs_.size() - head_};
  }
  const segment& front() const noexcept { return segs_[head_]; }
  /// True when no segment is a file range (the chain is a ConstBufferSequence).
  bool all_memory() const noexcept { return file_segments_ == 0; }

  /// The bytes at the front that lie back to back in memory, across as many memory slices as
  /// continue one another (pool pages allocated in sequence, page-cache pages read in one
  /// go): at most `max` bytes, empty when the chain starts with a file range or is empty.
  /// `slices` (optional) gets how many slices the span touches.
  std::span<const std::byte> front_run(std::size_t max,
                                       std::size_t* slices = nullptr) const noexcept;

  /// Fills `out` with the run of memory segments starting at segment `first`, stopping at the
  /// first file range, the end, or out.size(). Returns the number of iovecs written.
  std::size_t iovecs(std::span<iovec> out, std::size_t first = 0) const noexcept;

  /// ConstBufferSequence view. Precondition: all_memory().
  const_iterator begin() const noexcept { return const_iterator(segs_.begin() + head_); }
  const_iterator end() const noexcept { return const_iterator(segs_.end()); }

 private:
  void pop_front() noexcept;
  /// Appends a piece of known kind (slice or file_range), merged with the last segment when
  /// adjacent; the segment is built once, in place. push_back_merged dispatches a segment here.
  template <class Piece>
  void push_back_piece(Piece&& p);
  void push_back_merged(segment s);
  void push_front_merged(segment s);

  std::vector<segment> segs_;  // live segments are [head_, end)
  std::size_t head_ = 0;
  std::uint64_t size_ = 0;
  std::size_t file_segments_ = 0;
};

}  // namespace pagewire::fs
