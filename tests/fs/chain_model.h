#pragma once

/// Model-based checking of fs::chain, shared by tests/fs/chain_model_test.cc (random operations
/// from a fixed seed) and tests/fuzz/chain_fuzz.cc (operations decoded from the fuzz input).
///
/// chain_interpreter applies operations to three chains and, in parallel, to a model of each: the
/// pieces the chain must hold (kind, page or file, start, length; merged by the rule chain.h
/// documents: contiguous bytes of one page, contiguous ranges of one file handle) and the bytes
/// it must describe. After every operation every chain is compared with its model: size, bytes
/// (slice data; pread for file ranges), segmentation, no empty segment, no unmerged neighbours,
/// all_memory(), front(), iovecs(), front_run(), the Asio buffer sequence view; and every page
/// and file handle has exactly the references the models say (nothing leaked, nothing dropped
/// early). Nothing may be copied (stats::copied_bytes() stays put).
///
/// Choices come from a `Pick`: any callable `std::uint64_t(std::uint64_t bound)` returning a
/// value in [0, bound) for bound >= 1.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <sys/uio.h>
#include <system_error>
#include <unistd.h>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/buffer.hpp>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/file_range.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>
#include <pagewire/fs/stats.h>

#include "temp_files.h"  // relative: the fuzzer builds outside Bazel

namespace pagewire::fs::testing {

/// What the chains are made of: pool pages (allocated in sequence, so neighbours in memory),
/// a block of static memory, two temp files (the first opened twice: two handles whose ranges
/// must never merge). Contents are fixed; chain_interpreter never writes them.
struct chain_model_fixture {
  static constexpr std::size_t kPages = 6;

  chain_model_fixture() {
    page_pool_options o;
    o.try_huge_pages = false;
    pool = std::make_unique<page_pool>(o);
    for (std::size_t i = 0; i < kPages; ++i) {
      page_ref p = pool->allocate();
      if (!p) {
        error = "page_pool::allocate failed";
        return;
      }
      std::vector<char> b = random_bytes(kPageSize, static_cast<std::uint32_t>(100 + i));
      std::memcpy(p.data(), b.data(), b.size());
      page_bytes.emplace_back(b.begin(), b.end());
      pages.push_back(std::move(p));
    }
    std::vector<char> s = random_bytes(600, 7);
    static_bytes.assign(s.begin(), s.end());
    const std::size_t sizes[2] = {3 * kPageSize + 123, 5000};
    for (std::size_t f = 0; f < 2; ++f) {
      std::vector<char> b = random_bytes(sizes[f], static_cast<std::uint32_t>(200 + f));
      file_bytes.emplace_back(b.begin(), b.end());
      std::string path = temp_path("chain_model");
      if (!write_file(path, b)) {
        error = "cannot write " + path;
        return;
      }
      for (int k = 0; k < (f == 0 ? 2 : 1); ++k) {
        std::error_code ec;
        std::shared_ptr<const file> h = file::open(path.c_str(), ec);
        if (!h) {
          error = "cannot open " + path + ": " + ec.message();
          ::unlink(path.c_str());
          return;
        }
        handles.push_back(std::move(h));
        handle_file.push_back(f);
      }
      ::unlink(path.c_str());  // the descriptors keep the bytes
    }
  }
  chain_model_fixture(const chain_model_fixture&) = delete;
  chain_model_fixture& operator=(const chain_model_fixture&) = delete;

  /// Index of the page whose descriptor is `p`, or -1.
  int page_index(const void* p) const {
    for (std::size_t i = 0; i < pages.size(); ++i) {
      if (pages[i].get() == p) return static_cast<int>(i);
    }
    return -1;
  }
  int handle_index(const void* f) const {
    for (std::size_t i = 0; i < handles.size(); ++i) {
      if (handles[i].get() == f) return static_cast<int>(i);
    }
    return -1;
  }
  const std::string& bytes_of_handle(std::size_t h) const { return file_bytes[handle_file[h]]; }

  std::unique_ptr<page_pool> pool;
  std::vector<page_ref> pages;  // the fixture's own reference to each: use_count 1 when idle
  std::vector<std::string> page_bytes;
  std::string static_bytes;  // never resized: static slices point into it
  std::vector<std::string> file_bytes;
  std::vector<std::shared_ptr<const file>> handles;  // use_count 1 when idle
  std::vector<std::size_t> handle_file;              // which file each handle opens
  std::string error;                                 // set when setting up failed
};

/// One segment as the model sees it.
struct model_piece {
  bool is_file = false;
  const void* source = nullptr;  // page descriptor (nullptr: static memory) or file object
  std::uint64_t start = 0;       // address of the first byte, or the file offset
  std::uint64_t len = 0;
};

/// The merge rule of chain.h, stated on the model: same kind, same page (or both static) or same
/// file handle, and `b` starts where `a` ends.
inline bool model_adjacent(const model_piece& a, const model_piece& b) {
  return a.is_file == b.is_file && a.source == b.source && a.start + a.len == b.start;
}

inline std::string describe(const model_piece& p, const chain_model_fixture& fx) {
  std::string s;
  if (p.is_file) {
    s = "file h" + std::to_string(fx.handle_index(p.source)) + "[" + std::to_string(p.start);
  } else if (p.source == nullptr) {
    auto base = reinterpret_cast<std::uintptr_t>(fx.static_bytes.data());
    s = "static[" + std::to_string(p.start - base);
  } else {
    int i = fx.page_index(p.source);
    auto base = i >= 0 ? reinterpret_cast<std::uintptr_t>(fx.pages[i].data()) : 0;
    s = "page" + std::to_string(i) + "[" + std::to_string(p.start - base);
  }
  return s + ",+" + std::to_string(p.len) + ")";
}

/// What a chain must hold: its pieces, merged as chain.h says, and its bytes.
struct chain_model {
  std::vector<model_piece> pieces;
  std::string bytes;

  void push_back(const model_piece& p, std::string_view b) {
    if (p.len == 0) return;
    bytes.append(b);
    if (!pieces.empty() && model_adjacent(pieces.back(), p)) {
      pieces.back().len += p.len;
    } else {
      pieces.push_back(p);
    }
  }
  void push_front(const model_piece& p, std::string_view b) {
    if (p.len == 0) return;
    bytes.insert(0, b);
    if (!pieces.empty() && model_adjacent(p, pieces.front())) {
      pieces.front().start = p.start;
      pieces.front().len += p.len;
    } else {
      pieces.insert(pieces.begin(), p);
    }
  }
  void append(chain_model&& o) {
    std::size_t at = 0;
    for (const model_piece& p : o.pieces) {
      push_back(p, std::string_view(o.bytes).substr(at, p.len));
      at += p.len;
    }
    o.clear();
  }
  /// Detaches the first min(n, size) bytes.
  chain_model split(std::uint64_t n) {
    chain_model front;
    n = std::min<std::uint64_t>(n, bytes.size());
    front.bytes = bytes.substr(0, n);
    bytes.erase(0, n);
    std::size_t i = 0;
    while (n > 0) {
      model_piece& p = pieces[i];
      if (p.len <= n) {
        front.pieces.push_back(p);
        n -= p.len;
        ++i;
      } else {
        model_piece head = p;
        head.len = n;
        front.pieces.push_back(head);
        p.start += n;
        p.len -= n;
        n = 0;
      }
    }
    pieces.erase(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(i));
    return front;
  }
  void clear() {
    pieces.clear();
    bytes.clear();
  }
  bool all_memory() const {
    return std::none_of(pieces.begin(), pieces.end(),
                        [](const model_piece& p) { return p.is_file; });
  }
};

/// The segment a chain holds, seen as a model piece.
inline model_piece piece_of(const segment& s) {
  model_piece p;
  if (is_memory(s)) {
    const slice& m = std::get<slice>(s);
    p.source = m.page().get();
    p.start = reinterpret_cast<std::uintptr_t>(m.data());
    p.len = m.size();
  } else {
    const file_range& r = std::get<file_range>(s);
    p.is_file = true;
    p.source = r.handle().get();
    p.start = r.offset();
    p.len = r.size();
  }
  return p;
}

/// Compares `c` with `m`; returns what differs first, or "" when they agree.
inline std::string check_chain(const chain& c, const chain_model& m,
                               const chain_model_fixture& fx) {
  if (c.size() != m.bytes.size()) {
    return "size() " + std::to_string(c.size()) + ", model " + std::to_string(m.bytes.size());
  }
  if (c.empty() != m.bytes.empty()) return "empty() disagrees with size()";
  if (c.segment_count() != c.segments().size()) return "segment_count() != segments().size()";
  if (c.all_memory() != m.all_memory()) {
    return std::string("all_memory() ") + (c.all_memory() ? "true" : "false") + ", model " +
           (m.all_memory() ? "true" : "false");
  }
  const std::span<const segment> segs = c.segments();
  // Bytes, segment by segment.
  std::string got;
  got.reserve(m.bytes.size());
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const segment& s = segs[i];
    const std::uint64_t n = segment_size(s);
    if (n == 0) return "segment " + std::to_string(i) + " is empty";
    total += n;
    if (is_memory(s)) {
      const slice& m_slice = std::get<slice>(s);
      if (m_slice.data() == nullptr) return "segment " + std::to_string(i) + " has no data";
      if (m_slice.page() && m_slice.page_offset() + m_slice.size() > kPageSize) {
        return "segment " + std::to_string(i) + " runs past its page";
      }
      got.append(reinterpret_cast<const char*>(m_slice.data()), m_slice.size());
    } else {
      const file_range& r = std::get<file_range>(s);
      if (r.fd() < 0) return "segment " + std::to_string(i) + " is a file range without a file";
      std::vector<char> b = pread_all(r.fd(), r.offset(), static_cast<std::size_t>(r.size()));
      if (b.size() != r.size()) {
        return "segment " + std::to_string(i) + " reads past its file's end";
      }
      got.append(b.data(), b.size());
    }
  }
  if (total != c.size()) {
    return "segments add up to " + std::to_string(total) + ", size() " + std::to_string(c.size());
  }
  if (got != m.bytes) {
    std::size_t at = 0;
    while (at < got.size() && at < m.bytes.size() && got[at] == m.bytes[at])
      ++at;
    return "bytes differ from the model at offset " + std::to_string(at);
  }
  // No two neighbours that the merge rule joins (checked on the chain itself, then against the
  // model's segmentation, which is the maximal one).
  for (std::size_t i = 0; i + 1 < segs.size(); ++i) {
    if (model_adjacent(piece_of(segs[i]), piece_of(segs[i + 1]))) {
      return "segments " + std::to_string(i) + " and " + std::to_string(i + 1) +
             " are adjacent but not merged: " + describe(piece_of(segs[i]), fx) + " " +
             describe(piece_of(segs[i + 1]), fx);
    }
  }
  if (segs.size() != m.pieces.size()) {
    return std::to_string(segs.size()) + " segments, model " + std::to_string(m.pieces.size());
  }
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const model_piece p = piece_of(segs[i]);
    const model_piece& e = m.pieces[i];
    if (p.is_file != e.is_file || p.source != e.source || p.start != e.start || p.len != e.len) {
      return "segment " + std::to_string(i) + " is " + describe(p, fx) + ", model " +
             describe(e, fx);
    }
  }
  if (!segs.empty() && &c.front() != &segs[0]) return "front() is not the first segment";

  // iovecs(): the run of memory segments from `first`, at most out.size() of them.
  const std::size_t count = segs.size();
  const std::size_t firsts[] = {0,     1,         count / 2, count > 0 ? count - 1 : 0,
                                count, count + 3, SIZE_MAX};
  const std::size_t caps[] = {0, 1, 3, 64};
  for (std::size_t first : firsts) {
    std::size_t run = 0;
    while (first + run < count && !m.pieces[first + run].is_file)
      ++run;
    for (std::size_t cap : caps) {
      std::vector<iovec> iov(cap, iovec{nullptr, 12345});
      const std::size_t n = c.iovecs(iov, first);
      if (n != std::min(run, cap)) {
        return "iovecs(cap " + std::to_string(cap) + ", first " + std::to_string(first) +
               ") wrote " + std::to_string(n) + ", expected " + std::to_string(std::min(run, cap));
      }
      for (std::size_t k = 0; k < cap; ++k) {
        if (k < n) {
          const model_piece& e = m.pieces[first + k];
          if (reinterpret_cast<std::uintptr_t>(iov[k].iov_base) != e.start ||
              iov[k].iov_len != e.len) {
            return "iovecs(first " + std::to_string(first) + ")[" + std::to_string(k) +
                   "] is not " + describe(e, fx);
          }
        } else if (iov[k].iov_base != nullptr || iov[k].iov_len != 12345) {
          return "iovecs() wrote past the count it returned";
        }
      }
    }
  }

  // front_run(): memory pieces from the front whose bytes follow one another in memory.
  std::uint64_t run_bytes = 0;
  std::vector<std::uint64_t> run_starts;  // offset within the run where each piece starts
  for (std::size_t i = 0; i < m.pieces.size(); ++i) {
    const model_piece& p = m.pieces[i];
    if (p.is_file) break;
    if (i > 0 && p.start != m.pieces[0].start + run_bytes) break;
    run_starts.push_back(run_bytes);
    run_bytes += p.len;
  }
  const std::uint64_t maxes[] = {
      0, 1, 7, run_bytes > 0 ? run_bytes - 1 : 0, run_bytes, run_bytes + 1, std::uint64_t{1} << 30};
  for (std::uint64_t max : maxes) {
    const std::uint64_t want = std::min(run_bytes, max);
    std::size_t want_slices = 0;
    for (std::uint64_t at : run_starts) {
      if (at < want) ++want_slices;
    }
    std::size_t slices = 999;
    const std::span<const std::byte> span = c.front_run(static_cast<std::size_t>(max), &slices);
    if (span.size() != want || slices != want_slices ||
        (want > 0 && reinterpret_cast<std::uintptr_t>(span.data()) != m.pieces[0].start)) {
      return "front_run(" + std::to_string(max) + ") gave " + std::to_string(span.size()) +
             " bytes over " + std::to_string(slices) + " slices, expected " + std::to_string(want) +
             " over " + std::to_string(want_slices);
    }
    if (c.front_run(static_cast<std::size_t>(max)).size() != want) {
      return "front_run(" + std::to_string(max) + ") without a slice count differs";
    }
  }

  // The Asio ConstBufferSequence view, when the chain is all memory.
  if (c.all_memory()) {
    auto b = boost::asio::buffer_sequence_begin(c);
    auto e = boost::asio::buffer_sequence_end(c);
    if (e - b != static_cast<std::ptrdiff_t>(count)) return "end() - begin() != segment_count()";
    std::size_t k = 0;
    for (auto it = b; it != e; ++it, ++k) {
      const boost::asio::const_buffer buf = *it;
      const boost::asio::const_buffer at = b[static_cast<std::ptrdiff_t>(k)];
      if (reinterpret_cast<std::uintptr_t>(buf.data()) != m.pieces[k].start ||
          buf.size() != m.pieces[k].len || at.data() != buf.data() || at.size() != buf.size()) {
        return "buffer " + std::to_string(k) + " is not " + describe(m.pieces[k], fx);
      }
    }
    if (boost::asio::buffer_size(c) != m.bytes.size()) return "asio::buffer_size differs";
    std::string copy(m.bytes.size(), '\0');
    if (boost::asio::buffer_copy(boost::asio::buffer(copy), c) != m.bytes.size() ||
        copy != m.bytes) {
      return "asio::buffer_copy gives other bytes";
    }
  }
  return {};
}

/// Applies operations to three chains and their models; see the top of this file.
class chain_interpreter {
 public:
  static constexpr std::size_t kSlots = 3;
  /// Growth operations on a chain past these turn into consume(size / 2), keeping checks cheap.
  static constexpr std::size_t kMaxSegments = 48;
  static constexpr std::uint64_t kMaxBytes = 48 * 1024;

  explicit chain_interpreter(const chain_model_fixture& fx) : fx_(fx) {
    for (auto& c : chains_)
      c = std::make_unique<chain>();
    copied_at_start_ = stats::copied_bytes();
    if (!fx_.error.empty()) failure_ = "fixture: " + fx_.error;
  }

  /// How often the run met what it is meant to exercise (a run that never merges proves
  /// little about merging).
  struct coverage {
    std::size_t memory_merges = 0;    // an append or prepend of a slice that merged
    std::size_t file_merges = 0;      // an append or prepend of a file range that merged
    std::size_t cross_page_runs = 0;  // front_run() over slices of two pages, back to back
    std::size_t max_segments = 0;
  };

  bool ok() const { return failure_.empty(); }
  const coverage& covered() const { return covered_; }
  const std::string& failure() const { return failure_; }
  std::size_t steps() const { return steps_; }

  /// The last operations applied, oldest first, one a line.
  std::string recent_ops() const {
    std::string s;
    for (const std::string& op : log_)
      s += op + "\n";
    return s;
  }

  /// One operation, then every check. Returns ok().
  template <class Pick>
  bool step(Pick& pick) {
    if (!ok()) return false;
    ++steps_;
    apply(pick);
    if (ok()) verify();
    return ok();
  }

  /// Destroys every chain, then checks that each page and file handle is back to the fixture's
  /// own reference and that the pool has no other page in use. Returns ok().
  bool finish() {
    for (auto& c : chains_)
      c.reset();
    for (auto& m : models_)
      m.clear();
    if (ok()) check_references("after destroying every chain");
    if (ok() && fx_.pool->stats().pages_in_use != fx_.pages.size()) {
      fail("pool has " + std::to_string(fx_.pool->stats().pages_in_use) + " pages in use, the " +
           "fixture holds " + std::to_string(fx_.pages.size()));
    }
    return ok();
  }

 private:
  struct made {
    segment seg;
    model_piece piece;
    std::string bytes;
  };

  template <class Pick>
  static std::uint64_t pick_len(Pick& pick, std::uint64_t avail) {
    if (avail == 0) return 0;
    const std::uint64_t cap = pick(4) == 0 ? avail : std::min<std::uint64_t>(avail, 64);
    return 1 + pick(cap);
  }

  made slice_of_page(std::size_t i, std::size_t off, std::size_t len) const {
    made r{slice(fx_.pages[i], off, len), {}, fx_.page_bytes[i].substr(off, len)};
    r.piece = piece_of(r.seg);
    return r;
  }
  made static_slice(std::size_t off, std::size_t len) const {
    made r{slice::from_static(fx_.static_bytes.data() + off, len),
           {},
           fx_.static_bytes.substr(off, len)};
    r.piece = piece_of(r.seg);
    return r;
  }
  made range_of(std::size_t h, std::uint64_t off, std::uint64_t len) const {
    made r{file_range(fx_.handles[h], off, len),
           {},
           fx_.bytes_of_handle(h).substr(static_cast<std::size_t>(off),
                                         static_cast<std::size_t>(len))};
    r.piece = piece_of(r.seg);
    return r;
  }

  // A memory slice for chain `m`'s back (at_back) or front: continuing the piece there (it must
  // merge), in the neighbouring page (contiguous in memory, must not merge), on the same page
  // with a gap, static memory, or anywhere on any page.
  template <class Pick>
  made make_slice(Pick& pick, const chain_model& m, bool at_back) {
    const model_piece* end = nullptr;
    if (!m.pieces.empty()) end = at_back ? &m.pieces.back() : &m.pieces.front();
    const std::uint64_t mode = pick(6);
    if (end != nullptr && !end->is_file) {
      const bool is_static = end->source == nullptr;
      const int page = fx_.page_index(end->source);
      const std::uint64_t base = reinterpret_cast<std::uintptr_t>(
          is_static ? static_cast<const void*>(fx_.static_bytes.data()) : fx_.pages[page].data());
      const std::uint64_t limit = is_static ? fx_.static_bytes.size() : kPageSize;
      const std::uint64_t lo = end->start - base, hi = lo + end->len;  // offsets in the block
      auto make = [&](std::uint64_t off, std::uint64_t len) {
        return is_static ? static_slice(off, len) : slice_of_page(page, off, len);
      };
      if (mode <= 1) {  // continues the end piece: must merge
        if (at_back && hi < limit) {
          return make(hi, pick_len(pick, limit - hi));
        }
        if (!at_back && lo > 0) {
          const std::uint64_t len = pick_len(pick, lo);
          return make(lo - len, len);
        }
      } else if (mode == 2 && !is_static) {
        // Up to the page's edge (merges), then, once there, the neighbouring page: back to back
        // in memory (fx_.pages come from one arena in sequence) but never merged.
        if (at_back && hi < limit) return make(hi, limit - hi);
        if (at_back && static_cast<std::size_t>(page) + 1 < fx_.pages.size()) {
          return slice_of_page(page + 1, 0, pick_len(pick, kPageSize));
        }
        if (!at_back && lo > 0) return make(0, lo);
        if (!at_back && page > 0) {
          const std::uint64_t len = pick_len(pick, kPageSize);
          return slice_of_page(page - 1, kPageSize - len, len);
        }
      } else if (mode == 3) {  // same block, a gap of one or more bytes
        const std::uint64_t gap = 1 + pick(8);
        if (at_back && hi + gap < limit) return make(hi + gap, pick_len(pick, limit - hi - gap));
        if (!at_back && lo > gap) {
          const std::uint64_t len = pick_len(pick, lo - gap);
          return make(lo - gap - len, len);
        }
      }
    }
    if (mode == 4) {
      const std::uint64_t off = pick(fx_.static_bytes.size());
      return static_slice(off, pick_len(pick, fx_.static_bytes.size() - off));
    }
    const std::size_t page = pick(fx_.pages.size());
    const std::uint64_t off = pick(kPageSize);
    return slice_of_page(page, off, pick_len(pick, kPageSize - off));
  }

  // A file range for chain `m`'s back or front: continuing the range there (must merge), the
  // same bytes through the other handle of that file (must not merge), a gap, or anywhere.
  template <class Pick>
  made make_range(Pick& pick, const chain_model& m, bool at_back) {
    const model_piece* end = nullptr;
    if (!m.pieces.empty()) end = at_back ? &m.pieces.back() : &m.pieces.front();
    const std::uint64_t mode = pick(5);
    if (end != nullptr && end->is_file) {
      std::size_t h = static_cast<std::size_t>(fx_.handle_index(end->source));
      const std::uint64_t limit = fx_.bytes_of_handle(h).size();
      if (mode == 1) {  // the file's other handle, if it has one
        for (std::size_t k = 0; k < fx_.handles.size(); ++k) {
          if (k != h && fx_.handle_file[k] == fx_.handle_file[h]) {
            h = k;
            break;
          }
        }
      }
      const std::uint64_t lo = end->start, hi = lo + end->len;
      if (mode <= 1) {
        if (at_back && hi < limit) return range_of(h, hi, pick_len(pick, limit - hi));
        if (!at_back && lo > 0) {
          const std::uint64_t len = pick_len(pick, lo);
          return range_of(h, lo - len, len);
        }
      } else if (mode == 2) {
        const std::uint64_t gap = 1 + pick(8);
        if (at_back && hi + gap < limit)
          return range_of(h, hi + gap, pick_len(pick, limit - hi - gap));
        if (!at_back && lo > gap) {
          const std::uint64_t len = pick_len(pick, lo - gap);
          return range_of(h, lo - gap - len, len);
        }
      }
    }
    const std::size_t h = pick(fx_.handles.size());
    const std::uint64_t limit = fx_.bytes_of_handle(h).size();
    const std::uint64_t off = pick(limit);
    return range_of(h, off, pick_len(pick, limit - off));
  }

  template <class Pick>
  made make_segment(Pick& pick, const chain_model& m, bool at_back) {
    return pick(2) == 0 ? make_slice(pick, m, at_back) : make_range(pick, m, at_back);
  }

  // An n for split/consume: 0, everything, past the end, a piece boundary +-1, or anywhere.
  template <class Pick>
  std::uint64_t pick_count(Pick& pick, const chain_model& m) {
    const std::uint64_t size = m.bytes.size();
    switch (pick(6)) {
      case 0:
        return 0;
      case 1:
        return size;
      case 2:
        return size + 1 + pick(3) * (pick(2) == 0 ? 1 : std::uint64_t{1} << 40);
      case 3: {
        if (m.pieces.empty()) return 0;
        std::uint64_t at = 0;
        const std::size_t k = pick(m.pieces.size());
        for (std::size_t i = 0; i <= k; ++i)
          at += m.pieces[i].len;
        const std::uint64_t d = pick(3);
        return d == 0 ? at - 1 : d == 1 ? at : at + 1;
      }
      default:
        return size == 0 ? 0 : pick(size + 1);
    }
  }

  void log(std::string s) {
    log_.push_back("#" + std::to_string(steps_) + " " + std::move(s));
    if (log_.size() > 40) log_.pop_front();
  }
  void fail(std::string s) {
    if (failure_.empty()) failure_ = "step " + std::to_string(steps_) + ": " + std::move(s);
  }
  static std::string slot(std::size_t i) { return "c" + std::to_string(i); }

  bool too_big(std::size_t i) const {
    return models_[i].pieces.size() >= kMaxSegments || models_[i].bytes.size() >= kMaxBytes;
  }

  void append_made(std::size_t i, made&& mk, int how) {
    chain& c = *chains_[i];
    const std::string what = describe(mk.piece, fx_);
    if (how == 0) {  // the typed overload
      log(slot(i) + ".append(" + what + ")");
      if (is_memory(mk.seg)) {
        c.append(std::get<slice>(std::move(mk.seg)));
      } else {
        c.append(std::get<file_range>(std::move(mk.seg)));
      }
    } else {
      log(slot(i) + ".append(segment " + what + ")");
      c.append(std::move(mk.seg));
    }
    push(models_[i], mk, true);
  }

  // Updates the model and counts merges.
  void push(chain_model& m, const made& mk, bool at_back) {
    const std::size_t before = m.pieces.size();
    if (at_back) {
      m.push_back(mk.piece, mk.bytes);
    } else {
      m.push_front(mk.piece, mk.bytes);
    }
    if (mk.piece.len > 0 && m.pieces.size() == before) {
      ++(mk.piece.is_file ? covered_.file_merges : covered_.memory_merges);
    }
  }

  template <class Pick>
  void apply(Pick& pick) {
    const std::size_t i = pick(kSlots);
    std::size_t j = pick(kSlots);
    chain& c = *chains_[i];
    chain_model& m = models_[i];
    std::uint64_t op = pick(100);
    if (op < 58 && too_big(i)) op = 66;  // growth on a big chain: consume instead

    if (op < 18) {  // append a slice
      append_made(i, make_slice(pick, m, true), op % 3 == 0 ? 1 : 0);
    } else if (op < 28) {  // prepend a slice
      made mk = make_slice(pick, m, false);
      log(slot(i) + ".prepend(" + describe(mk.piece, fx_) + ")");
      c.prepend(std::get<slice>(std::move(mk.seg)));
      push(m, mk, false);
    } else if (op < 40) {  // append a file range
      append_made(i, make_range(pick, m, true), op % 3 == 0 ? 1 : 0);
    } else if (op < 48) {  // prepend a file range
      made mk = make_range(pick, m, false);
      log(slot(i) + ".prepend(" + describe(mk.piece, fx_) + ")");
      c.prepend(std::get<file_range>(std::move(mk.seg)));
      push(m, mk, false);
    } else if (op < 52) {  // append(chain&&) of a fresh chain of a few segments built here
      chain other;
      chain_model om;
      const std::uint64_t n = pick(5);
      for (std::uint64_t k = 0; k < n; ++k) {
        made mk = make_segment(pick, k == 0 ? m : om, true);
        other.append(std::move(mk.seg));
        om.push_back(mk.piece, mk.bytes);
      }
      if (std::string e = check_chain(other, om, fx_); !e.empty()) {
        return fail("building a chain to append: " + e);
      }
      log(slot(i) + ".append(chain of " + std::to_string(other.segment_count()) + " segments)");
      c.append(std::move(other));
      m.append(std::move(om));
      if (!other.empty() || other.segment_count() != 0) fail("append(chain&&) left its source");
    } else if (op < 58) {  // append(chain&&) of another slot (itself: no change)
      log(slot(i) + ".append(std::move(" + slot(j) + "))");
      chain& src = *chains_[j];
      c.append(std::move(src));
      if (i != j) m.append(std::move(models_[j]));
    } else if (op < 66) {  // split: the front goes to another slot, is dropped, or rejoins
      const std::uint64_t n = pick_count(pick, m);
      const std::uint64_t where = pick(3);
      log(slot(i) + ".split(" + std::to_string(n) + ")" +
          (where == 0   ? ", front dropped"
           : where == 1 ? ", front to " + slot(j)
                        : ", rejoined"));
      chain front = c.split(n);
      chain_model fm = m.split(n);
      if (std::string e = check_chain(front, fm, fx_); !e.empty()) return fail("split front: " + e);
      if (std::string e = check_chain(c, m, fx_); !e.empty()) return fail("split rest: " + e);
      if (where == 1 && j != i) {
        *chains_[j] = std::move(front);
        models_[j] = std::move(fm);
      } else if (where == 2) {
        front.append(std::move(c));  // must give back the original segmentation
        c = std::move(front);
        fm.append(std::move(m));
        m = std::move(fm);
      }
    } else if (op < 76) {  // consume
      const std::uint64_t n = op == 66 && too_big(i) ? m.bytes.size() / 2 : pick_count(pick, m);
      log(slot(i) + ".consume(" + std::to_string(n) + ")");
      const std::uint64_t want = std::min<std::uint64_t>(n, m.bytes.size());
      const std::uint64_t got = c.consume(n);
      m.split(n);
      if (got != want) {
        fail("consume(" + std::to_string(n) + ") returned " + std::to_string(got) + ", expected " +
             std::to_string(want));
      }
    } else if (op < 79) {
      log(slot(i) + ".clear()");
      c.clear();
      m.clear();
    } else if (op < 84) {
      reserve(pick, i);
    } else if (op < 88) {  // copy-construct
      if (i == j) j = (j + 1) % kSlots;
      log(slot(j) + " = chain(" + slot(i) + ") (copy-construct)");
      chains_[j] = std::make_unique<chain>(*chains_[i]);
      models_[j] = models_[i];
    } else if (op < 91) {  // copy-assign, self-assignment included
      log(slot(j) + " = " + slot(i) + " (copy-assign)");
      chain& dst = *chains_[j];
      dst = *chains_[i];
      models_[j] = models_[i];
    } else if (op < 95) {  // move-construct
      if (i == j) j = (j + 1) % kSlots;
      log(slot(j) + " = chain(std::move(" + slot(i) + ")) (move-construct)");
      const segment* storage = c.segment_count() > 0 ? c.segments().data() : nullptr;
      chains_[j] = std::make_unique<chain>(std::move(c));
      models_[j] = std::move(m);
      m.clear();
      if (storage != nullptr && chains_[j]->segments().data() != storage) {
        fail("move-construct did not take the segment storage along");
      }
    } else if (op < 98) {  // move-assign
      if (i == j) j = (j + 1) % kSlots;
      log(slot(j) + " = std::move(" + slot(i) + ") (move-assign)");
      const segment* storage = c.segment_count() > 0 ? c.segments().data() : nullptr;
      *chains_[j] = std::move(c);
      models_[j] = std::move(m);
      m.clear();
      if (storage != nullptr && chains_[j]->segments().data() != storage) {
        fail("move-assign did not take the segment storage along");
      }
    } else {
      append_empty(pick, i);
    }
  }

  // reserve(n), then appends until the chain has n segments, checking that the storage stays
  // where it was (the room reserve promises); n is often just past the segment count, where a
  // partly consumed chain's spare room before its first segment matters.
  template <class Pick>
  void reserve(Pick& pick, std::size_t i) {
    chain& c = *chains_[i];
    chain_model& m = models_[i];
    const std::size_t n = pick(2) == 0 ? pick(41) : c.segment_count() + 1 + pick(24);
    log(slot(i) + ".reserve(" + std::to_string(n) + ") and fill");
    c.reserve(n);
    if (n <= c.segment_count()) return;
    if (std::string e = check_chain(c, m, fx_); !e.empty()) return fail("after reserve: " + e);
    const segment* storage = c.segment_count() > 0 ? c.segments().data() : nullptr;
    for (std::size_t tries = 0; tries < 3 * n && c.segment_count() < n; ++tries) {
      made mk = make_segment(pick, chain_model(), true);  // anywhere: seldom merges
      c.append(std::move(mk.seg));
      m.push_back(mk.piece, mk.bytes);
      if (storage == nullptr) {
        storage = c.segments().data();  // the first append to an empty chain may allocate
      } else if (c.segments().data() != storage) {
        return fail("reserve(" + std::to_string(n) + "): storage moved at " +
                    std::to_string(c.segment_count()) + " segments");
      }
    }
  }

  template <class Pick>
  void append_empty(Pick& pick, std::size_t i) {
    chain& c = *chains_[i];
    const std::size_t page = pick(fx_.pages.size());
    const std::uint64_t v = pick(8);
    log(slot(i) + " empty segment, form " + std::to_string(v));
    switch (v) {
      case 0:
        c.append(slice());
        break;
      case 1:
        c.prepend(slice());
        break;
      case 2:
        c.append(slice(fx_.pages[page], pick(kPageSize + 1), 0));
        break;
      case 3:
        c.prepend(file_range());
        break;
      case 4:
        c.append(file_range(fx_.handles[pick(fx_.handles.size())], pick(100), 0));
        break;
      case 5:
        c.append(segment(file_range()));
        break;
      case 6:
        c.append(chain());
        break;
      default:
        c.prepend(slice::from_static(fx_.static_bytes.data() + pick(10), 0));
        break;
    }
  }

  void verify() {
    for (std::size_t k = 0; k < kSlots; ++k) {
      const std::vector<model_piece>& p = models_[k].pieces;
      covered_.max_segments = std::max(covered_.max_segments, p.size());
      if (p.size() >= 2 && !p[0].is_file && !p[1].is_file && p[0].source != nullptr &&
          p[1].start == p[0].start + p[0].len) {
        ++covered_.cross_page_runs;  // not merged, so the second slice is on another page
      }
      if (std::string e = check_chain(*chains_[k], models_[k], fx_); !e.empty()) {
        return fail(slot(k) + ": " + e);
      }
    }
    check_references("");
    if (stats::copied_bytes() != copied_at_start_) fail("chain operations copied bytes");
  }

  // Each page and handle: the fixture's reference plus one per segment on it, in any chain.
  void check_references(const std::string& when) {
    for (std::size_t p = 0; p < fx_.pages.size(); ++p) {
      std::size_t want = 1;
      for (const chain_model& m : models_) {
        for (const model_piece& q : m.pieces)
          want += !q.is_file && q.source == fx_.pages[p].get();
      }
      if (fx_.pages[p]->use_count() != want) {
        return fail("page" + std::to_string(p) + " use_count " +
                    std::to_string(fx_.pages[p]->use_count()) + ", expected " +
                    std::to_string(want) + (when.empty() ? "" : " " + when));
      }
    }
    for (std::size_t h = 0; h < fx_.handles.size(); ++h) {
      long want = 1;
      for (const chain_model& m : models_) {
        for (const model_piece& q : m.pieces)
          want += q.is_file && q.source == fx_.handles[h].get();
      }
      if (fx_.handles[h].use_count() != want) {
        return fail("file handle h" + std::to_string(h) + " use_count " +
                    std::to_string(fx_.handles[h].use_count()) + ", expected " +
                    std::to_string(want) + (when.empty() ? "" : " " + when));
      }
    }
  }

  const chain_model_fixture& fx_;
  std::unique_ptr<chain> chains_[kSlots];
  chain_model models_[kSlots];
  std::deque<std::string> log_;
  std::string failure_;
  std::size_t steps_ = 0;
  std::uint64_t copied_at_start_ = 0;
  coverage covered_;
};

}  // namespace pagewire::fs::testing
