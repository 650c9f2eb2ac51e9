#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sys/mman.h>
#include <sys/uio.h>

#include <liburing.h>

#include <pagewire/fs/page_pool.h>
#include <pagewire/runtime/ring.h>

namespace pagewire::fs {
namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;

// Maps `bytes` (a multiple of 2 MiB) aligned to 2 MiB. Returns nullptr when refused.
std::byte* map_arena(std::size_t bytes, bool try_huge, bool& huge) {
  huge = false;
  if (try_huge) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
    if (p != MAP_FAILED) {
      huge = true;
      return static_cast<std::byte*>(p);
    }
  }
  // Over-map by one huge page and trim, so transparent huge pages can back the arena.
  void* raw = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  auto addr = reinterpret_cast<std::uintptr_t>(raw);
  std::uintptr_t aligned = (addr + kHugePage - 1) & ~(kHugePage - 1);
  if (aligned > addr) ::munmap(raw, aligned - addr);
  std::uintptr_t tail = aligned + bytes;
  std::uintptr_t end = addr + bytes + kHugePage;
  if (end > tail) ::munmap(reinterpret_cast<void*>(tail), end - tail);
  if (try_huge) ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);
  return reinterpret_cast<std::byte*>(aligned);
}

}  // namespace

page_pool::page_pool(page_pool_options options) : options_(options) {
  options_.arena_bytes =
      std::max(kHugePage, (options_.arena_bytes + kHugePage - 1) & ~(kHugePage - 1));
  options_.max_bytes = std::max(options_.max_bytes, options_.arena_bytes);
  std::lock_guard lock(mu_);
  for (std::size_t i = 0; i < options_.initial_arenas; ++i) {
    if (!add_arena_locked()) break;
  }
}

page_pool::~page_pool() {
  if (free_count_ != total_pages_) {
    std::fprintf(stderr, "pagewire: page_pool destroyed with %zu pages still referenced\n",
                 total_pages_ - free_count_);
    std::abort();
  }
  for (auto& a : arenas_)
    ::munmap(a->base, a->bytes);
}

bool page_pool::add_arena_locked() {
  if ((arenas_.size() + 1) * options_.arena_bytes > options_.max_bytes) return false;
  bool huge = false;
  std::byte* base = map_arena(options_.arena_bytes, options_.try_huge_pages, huge);
  if (base == nullptr) return false;
  auto a = std::make_unique<detail::arena>();
  a->pool = this;
  a->base = base;
  a->bytes = options_.arena_bytes;
  a->huge = huge;
  std::size_t n = a->bytes / kPageSize;
  a->pages.reset(new page[n]);
  // Push in reverse so allocation walks the arena upwards (sequential reads land contiguously).
  for (std::size_t i = n; i-- > 0;) {
    page& p = a->pages[i];
    p.data_ = base + i * kPageSize;
    p.arena_ = a.get();
    p.next_free_ = free_;
    free_ = &p;
  }
  free_count_ += n;
  total_pages_ += n;
  arenas_.push_back(std::move(a));
  return true;
}

page_ref page_pool::allocate() {
  std::lock_guard lock(mu_);
  if (free_ == nullptr && !add_arena_locked()) {
    ++failures_;
    return page_ref();
  }
  page* p = free_;
  free_ = p->next_free_;
  p->next_free_ = nullptr;
  --free_count_;
  ++allocations_;
  p->refs_.store(1, std::memory_order_relaxed);
  return page_ref(p);
}

void page_pool::free_page(page* p) noexcept {
  std::lock_guard lock(mu_);
  p->next_free_ = free_;
  free_ = p;
  ++free_count_;
}

std::error_code page_pool::register_buffers(runtime::ring& ring) {
  std::lock_guard lock(mu_);
  if (std::find(rings_.begin(), rings_.end(), ring.id()) != rings_.end()) return {};
  // Every ring gets the same table, so an arena's buffer_index holds on each of them: the
  // arenas of the first registration, even when more were mapped since.
  std::size_t n = rings_.empty() ? arenas_.size() : registered_arenas_;
  if (n == 0) return std::make_error_code(std::errc::invalid_argument);
  std::vector<iovec> iovs;
  iovs.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    iovs.push_back(iovec{arenas_[i]->base, arenas_[i]->bytes});
  int rc = io_uring_register_buffers(&ring.native(), iovs.data(), static_cast<unsigned>(n));
  if (rc < 0) return std::error_code(-rc, std::system_category());
  rings_.push_back(ring.id());
  registered_arenas_ = n;
  for (std::size_t i = 0; i < n; ++i) {
    arenas_[i]->buffer_index.store(static_cast<int>(i), std::memory_order_relaxed);
  }
  return {};
}

bool page_pool::registered_on(const runtime::ring& ring) const {
  std::lock_guard lock(mu_);
  return std::find(rings_.begin(), rings_.end(), ring.id()) != rings_.end();
}

page_pool_stats page_pool::stats() const {
  std::lock_guard lock(mu_);
  page_pool_stats s;
  s.arenas = arenas_.size();
  for (auto& a : arenas_) {
    s.huge_arenas += a->huge ? 1 : 0;
    s.registered_arenas += a->buffer_index.load(std::memory_order_relaxed) >= 0 ? 1 : 0;
    s.bytes_mapped += a->bytes;
  }
  s.pages_total = total_pages_;
  s.pages_free = free_count_;
  s.pages_in_use = total_pages_ - free_count_;
  s.allocations = allocations_;
  s.allocation_failures = failures_;
  return s;
}

}  // namespace pagewire::fs
