#pragma once

/// Page-granular memory for pagewire: 4 KiB pages carved from large arenas (2 MiB huge pages
/// when the system grants them, transparent huge pages or normal pages otherwise), refcounted,
/// returned to their pool when the last `page_ref` goes.
///
/// Ownership: the pool owns arenas and page descriptors; users hold `page_ref`s. The pool must
/// outlive every page_ref it handed out (its destructor aborts if pages are still held).
/// Threading: allocate, release, stats and registration are thread-safe; page refcounts are
/// atomic, so page_refs may cross threads. Errors: allocation failure returns an empty page_ref;
/// registration failure returns the errno as std::error_code and the pool keeps working.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

namespace pagewire::runtime {
class ring;
}

namespace pagewire::fs {

inline constexpr std::size_t kPageSize = 4096;

class page_pool;
class page_ref;

namespace detail {
struct arena;
}

/// One 4 KiB page's descriptor, owned by its pool; reach it through a page_ref.
class page {
 public:
  page(const page&) = delete;
  page& operator=(const page&) = delete;

  /// Start of the page: 4 KiB aligned, kPageSize bytes, writable by whoever holds it.
  std::byte* data() const noexcept { return data_; }
  page_pool& pool() const noexcept;
  /// Index of this page's arena in the fixed-buffer table of every ring the pool registered
  /// with (READ_FIXED, SEND_ZC with IORING_RECVSEND_FIXED_BUF), or -1 when not registered.
  int buffer_index() const noexcept;
  /// Current number of page_refs (slices included). For tests and eviction decisions.
  std::uint32_t use_count() const noexcept { return refs_.load(std::memory_order_acquire); }

 private:
  friend class page_pool;
  friend class page_ref;
  page() = default;
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;

  std::byte* data_ = nullptr;
  detail::arena* arena_ = nullptr;
  std::atomic<std::uint32_t> refs_{0};
  page* next_free_ = nullptr;
};

/// A counted reference to a page. Copy adds a reference, move transfers it, destruction drops
/// it; the last drop returns the page to its pool. Never copies page bytes.
class page_ref {
 public:
  page_ref() noexcept = default;
  page_ref(const page_ref& o) noexcept : p_(o.p_) {
    if (p_) p_->add_ref();
  }
  page_ref(page_ref&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  // The new reference is added before the old one drops, so self-assignment keeps the page.
  page_ref& operator=(const page_ref& o) noexcept {  // NOLINT(bugprone-unhandled-self-assignment)
    if (o.p_) o.p_->add_ref();
    reset();
    p_ = o.p_;
    return *this;
  }
  page_ref& operator=(page_ref&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = o.p_;
      o.p_ = nullptr;
    }
    return *this;
  }
  ~page_ref() { reset(); }

  void reset() noexcept {
    if (p_) {
      page* p = p_;
      p_ = nullptr;
      p->release();
    }
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  page* get() const noexcept { return p_; }
  page* operator->() const noexcept { return p_; }
  std::byte* data() const noexcept { return p_->data(); }
  friend bool operator==(const page_ref& a, const page_ref& b) noexcept { return a.p_ == b.p_; }

 private:
  friend class page_pool;
  explicit page_ref(page* p) noexcept : p_(p) {}  // adopts a reference already counted
  page* p_ = nullptr;
};

/// Exact accounting: pages_in_use + pages_free == pages_total at every quiescent point.
struct page_pool_stats {
  std::size_t arenas = 0;
  std::size_t huge_arenas = 0;        ///< arenas backed by MAP_HUGETLB 2 MiB pages
  std::size_t registered_arenas = 0;  ///< arenas in a ring's fixed-buffer table
  std::size_t pages_total = 0;
  std::size_t pages_free = 0;
  std::size_t pages_in_use = 0;
  std::size_t bytes_mapped = 0;
  std::uint64_t allocations = 0;
  std::uint64_t allocation_failures = 0;  ///< max_bytes reached or mmap refused
};

/// Validated once at construction.
struct page_pool_options {
  /// Arena size; rounded up to a multiple of 2 MiB.
  std::size_t arena_bytes = std::size_t{2} << 20;
  /// Upper bound on mapped memory; allocation fails (empty page_ref) beyond it.
  std::size_t max_bytes = std::size_t{256} << 20;
  /// Arenas mapped up front (so registration covers them).
  std::size_t initial_arenas = 0;
  /// Try MAP_HUGETLB first; otherwise madvise(MADV_HUGEPAGE) on normal pages.
  bool try_huge_pages = true;
};

class page_pool {
 public:
  explicit page_pool(page_pool_options options = {});
  page_pool(const page_pool&) = delete;
  page_pool& operator=(const page_pool&) = delete;
  ~page_pool();

  /// A page with use_count 1, or an empty page_ref when max_bytes is reached or mmap fails.
  /// Contents are whatever the previous holder left (zeroed on first use only).
  page_ref allocate();

  /// Registers the pool's arenas as fixed buffers on `ring` (arena i is buffer index i). The
  /// first successful registration takes every arena mapped so far; every later ring gets those
  /// same arenas, so a page's buffer_index() names the same buffer on each registered ring.
  /// Arenas mapped after the first registration stay unregistered on every ring (map them up
  /// front with initial_arenas). On failure (ENOMEM or EPERM from RLIMIT_MEMLOCK, EBUSY when
  /// the ring holds another table, ...) nothing is registered, the error is returned and the
  /// pool keeps working unregistered. Call from the ring's owning thread; the ring keeps the
  /// table until it is destroyed, which must happen before the pool is (do not unregister it
  /// through ring.native()). Calling it again for a registered ring does nothing.
  std::error_code register_buffers(runtime::ring& ring);
  /// True when register_buffers(ring) succeeded for this ring. Rings are known by
  /// runtime::ring::id(), which no later ring gets: a ring created where a registered one was
  /// (same address, same fd) is not registered until it registers itself.
  bool registered_on(const runtime::ring& ring) const;

  page_pool_stats stats() const;
  const page_pool_options& options() const noexcept { return options_; }

 private:
  friend class page;
  void free_page(page* p) noexcept;
  bool add_arena_locked();

  page_pool_options options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<detail::arena>> arenas_;
  std::vector<std::uint64_t> rings_;   // runtime::ring::id() of every registered ring
  std::size_t registered_arenas_ = 0;  // arenas 0..n-1 are in every ring's table
  page* free_ = nullptr;
  std::size_t free_count_ = 0;
  std::size_t total_pages_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t failures_ = 0;
};

namespace detail {
struct arena {
  page_pool* pool = nullptr;
  std::byte* base = nullptr;
  std::size_t bytes = 0;
  bool huge = false;
  std::atomic<int> buffer_index{-1};
  std::unique_ptr<page[]> pages;
};
}  // namespace detail

inline page_pool& page::pool() const noexcept {
  return *arena_->pool;
}
inline int page::buffer_index() const noexcept {
  return arena_->buffer_index.load(std::memory_order_relaxed);
}
inline void page::release() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) arena_->pool->free_page(this);
}

}  // namespace pagewire::fs
