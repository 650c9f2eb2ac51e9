#include <algorithm>
#include <type_traits>
#include <utility>
#include <variant>

#include <pagewire/fs/chain.h>

namespace pagewire::fs {
namespace {

// Merges `next` into `prev` when both are the same kind and adjacent.
bool merge_into(segment& prev, const segment& next) {
  if (prev.index() != next.index()) return false;
  if (prev.index() == 0) return std::get<0>(prev).merge(std::get<0>(next));
  return std::get<1>(prev).merge(std::get<1>(next));
}

// Detaches the first n bytes (n < segment_size(s)) of a segment.
segment split_segment(segment& s, std::uint64_t n) {
  if (s.index() == 0) return std::get<0>(s).split(static_cast<std::size_t>(n));
  return std::get<1>(s).split(n);
}

void trim_segment(segment& s, std::uint64_t n) {
  if (s.index() == 0) {
    std::get<0>(s).trim_front(static_cast<std::size_t>(n));
  } else {
    std::get<1>(s).trim_front(n);
  }
}

}  // namespace

chain::chain(const chain& o)
    : segs_(o.segs_.begin() + static_cast<std::ptrdiff_t>(o.head_), o.segs_.end()),
      size_(o.size_),
      file_segments_(o.file_segments_) {}

chain& chain::operator=(const chain& o) {
  if (this != &o) *this = chain(o);
  return *this;
}

[[gnu::hot]] chain::chain(chain&& o) noexcept
    : segs_(std::move(o.segs_)), head_(o.head_), size_(o.size_), file_segments_(o.file_segments_) {
  o.segs_.clear();
  o.head_ = 0;
  o.size_ = 0;
  o.file_segments_ = 0;
}

[[gnu::hot]] chain& chain::operator=(chain&& o) noexcept {
  if (this != &o) {
    segs_ = std::move(o.segs_);
    head_ = o.head_;
    size_ = o.size_;
    file_segments_ = o.file_segments_;
    o.segs_.clear();
    o.head_ = 0;
    o.size_ = 0;
    o.file_segments_ = 0;
  }
  return *this;
}

template <class Piece>
[[gnu::hot]] void chain::push_back_piece(Piece&& p) {
  using kind = std::decay_t<Piece>;
  const std::uint64_t n = p.size();
  if (n == 0) return;
  size_ += n;
  if (segment_count() > 0) {
    kind* last = std::get_if<kind>(&segs_.back());
    if (last && last->merge(p)) return;
  }
  if constexpr (std::is_same_v<kind, file_range>) ++file_segments_;
  if (segs_.capacity() == 0) segs_.reserve(4);  // a first allocation with room to grow
  segs_.emplace_back(std::forward<Piece>(p));
}

[[gnu::hot]] void chain::push_back_merged(segment s) {
  std::visit([this](auto&& piece) { push_back_piece(std::forward<decltype(piece)>(piece)); },
             std::move(s));
}

[[gnu::hot]] void chain::push_front_merged(segment s) {
  std::uint64_t n = segment_size(s);
  if (n == 0) return;
  size_ += n;
  if (segment_count() > 0 && merge_into(s, segs_[head_])) {
    segs_[head_] = std::move(s);
    return;
  }
  if (!is_memory(s)) ++file_segments_;
  if (head_ > 0) {
    segs_[--head_] = std::move(s);
  } else {
    segs_.insert(segs_.begin(), std::move(s));
  }
}

[[gnu::hot]] void chain::append(slice s) {
  push_back_piece(std::move(s));
}
[[gnu::hot]] void chain::append(file_range r) {
  push_back_piece(std::move(r));
}
[[gnu::hot]] void chain::append(segment s) {
  push_back_merged(std::move(s));
}

[[gnu::hot]] void chain::append(chain&& other) {
  if (this == &other) return;
  // An empty chain takes other's storage, unless reserve() gave it room for all of other.
  if (empty() && segs_.capacity() < other.segment_count()) {
    *this = std::move(other);
    return;
  }
  for (std::size_t i = other.head_; i < other.segs_.size(); ++i) {
    push_back_merged(std::move(other.segs_[i]));
  }
  other.clear();
}

[[gnu::hot]] void chain::prepend(slice s) {
  push_front_merged(segment(std::move(s)));
}
void chain::prepend(file_range r) {
  push_front_merged(segment(std::move(r)));
}

[[gnu::hot]] void chain::pop_front() noexcept {
  if (!is_memory(segs_[head_])) --file_segments_;
  if (head_ + 1 == segs_.size()) {  // the last one: dropped with the rest, storage kept
    segs_.clear();
    head_ = 0;
    return;
  }
  segs_[head_] = segment();  // drop the page / file reference now
  if (++head_ >= 16 && head_ * 2 >= segs_.size()) {
    segs_.erase(segs_.begin(), segs_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
}

chain chain::split(std::uint64_t n) {
  chain front;
  n = std::min(n, size_);
  while (n > 0) {
    segment& s = segs_[head_];
    std::uint64_t len = segment_size(s);
    if (len <= n) {
      size_ -= len;
      n -= len;
      front.push_back_merged(std::move(s));
      pop_front();
    } else {
      size_ -= n;
      front.push_back_merged(split_segment(s, n));
      n = 0;
    }
  }
  return front;
}

[[gnu::hot]] std::uint64_t chain::consume(std::uint64_t n) {
  n = std::min(n, size_);
  std::uint64_t left = n;
  while (left > 0) {
    segment& s = segs_[head_];
    std::uint64_t len = segment_size(s);
    if (len <= left) {
      size_ -= len;
      left -= len;
      pop_front();
    } else {
      trim_segment(s, left);
      size_ -= left;
      left = 0;
    }
  }
  return n;
}

[[gnu::hot]] void chain::clear() noexcept {
  segs_.clear();
  head_ = 0;
  size_ = 0;
  file_segments_ = 0;
}

[[gnu::hot]] void chain::swap(chain& o) noexcept {
  segs_.swap(o.segs_);
  std::swap(head_, o.head_);
  std::swap(size_, o.size_);
  std::swap(file_segments_, o.file_segments_);
}

void chain::reserve(std::size_t n) {
  if (segs_.capacity() - head_ >= n) return;
  // Reclaim the consumed front first, so the live segments start at 0 again.
  segs_.erase(segs_.begin(), segs_.begin() + static_cast<std::ptrdiff_t>(head_));
  head_ = 0;
  segs_.reserve(n);
}

[[gnu::hot]] std::span<const std::byte> chain::front_run(std::size_t max,
                                                         std::size_t* slices) const noexcept {
  std::size_t n = 0, count = 0;
  const std::byte* start = nullptr;
  for (std::size_t i = head_; i < segs_.size() && n < max; ++i) {
    if (!is_memory(segs_[i])) break;
    const slice& s = std::get<0>(segs_[i]);
    if (count > 0 && s.data() != start + n) break;
    if (count == 0) start = s.data();
    n += s.size();
    ++count;
  }
  if (slices) *slices = count;
  return {start, std::min(n, max)};
}

[[gnu::hot]] std::size_t chain::iovecs(std::span<iovec> out, std::size_t first) const noexcept {
  if (first >= segment_count()) return 0;  // head_ + first would wrap for the largest indexes
  std::size_t n = 0;
  for (std::size_t i = head_ + first; i < segs_.size() && n < out.size(); ++i) {
    if (!is_memory(segs_[i])) break;
    const slice& s = std::get<0>(segs_[i]);
    out[n++] = iovec{const_cast<std::byte*>(s.data()), s.size()};
  }
  return n;
}

}  // namespace pagewire::fs
