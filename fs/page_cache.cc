#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <tuple>

#include <liburing.h>

#include <pagewire/fs/page_cache.h>

namespace pagewire::fs {
namespace detail {

struct cache_entry {
  cache_key key;
  file_version version;
  page_ref page;
  std::size_t length = 0;
  std::size_t clock_pos = 0;
  bool filling = true;
  bool indexed = true;
  bool referenced = false;
  page_waiter* waiters = nullptr;  // LIFO; order among waiters of one page is not promised
};

// One read of a run of consecutive pages of one file.
struct fill_op final : runtime::operation {
  page_cache* cache = nullptr;
  std::shared_ptr<const file> f;
  std::vector<cache_entry*> entries;
  std::vector<iovec> iov;
  std::uint64_t size = 0;          // the file's size in the version being read
  std::uint64_t resumed_from = 0;  // a resumed read: file offset where the previous one stopped
  int buf_index = -1;              // >= 0: READ_FIXED over one contiguous run
  bool contiguous = false;

  std::uint64_t offset() const { return entries.front()->key.index * kPageSize; }

  void prepare(io_uring_sqe* sqe) override {
    auto n = static_cast<unsigned>(entries.size());
    void* base = entries.front()->page.data();
    if (contiguous && buf_index >= 0) {
      io_uring_prep_read_fixed(sqe, f->fd(), base, n * kPageSize, offset(), buf_index);
    } else if (contiguous) {
      io_uring_prep_read(sqe, f->fd(), base, n * kPageSize, offset());
    } else {
      io_uring_prep_readv(sqe, f->fd(), iov.data(), n, offset());
    }
  }
  void complete(int result, unsigned) override { cache->on_filled(*this, result); }
};

page_index::page_index(std::size_t expected) {
  // Room for `expected` up front, up to 2^16 slots: a larger budget is reached by growth, not
  // paid for before the first page (nor overflowed: 2 * SIZE_MAX wraps and never ends the loop).
  expected = std::min<std::size_t>(expected, std::size_t{1} << 15);
  std::size_t cap = 16;
  while (cap < 2 * expected)
    cap *= 2;
  slots_.resize(cap);
  mask_ = cap - 1;
}

cache_entry* page_index::find(const cache_key& k) const noexcept {
  for (std::size_t i = hash_key(k) & mask_;; i = (i + 1) & mask_) {
    const slot& s = slots_[i];
    if (s.entry == nullptr) return nullptr;
    if (s.key == k) return s.entry;
  }
}

void page_index::insert(const cache_key& k, cache_entry* e) {
  if (2 * (size_ + 1) > slots_.size()) grow();
  std::size_t i = hash_key(k) & mask_;
  while (slots_[i].entry != nullptr)
    i = (i + 1) & mask_;
  slots_[i] = slot{k, e};
  ++size_;
}

void page_index::erase(const cache_key& k) noexcept {
  std::size_t i = hash_key(k) & mask_;
  while (slots_[i].entry != nullptr && !(slots_[i].key == k))
    i = (i + 1) & mask_;
  if (slots_[i].entry == nullptr) return;
  // Backward shift: pull later members of the probe run into the hole when their home allows.
  for (std::size_t j = (i + 1) & mask_; slots_[j].entry != nullptr; j = (j + 1) & mask_) {
    std::size_t home = hash_key(slots_[j].key) & mask_;
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      slots_[i] = slots_[j];
      i = j;
    }
  }
  slots_[i].entry = nullptr;
  --size_;
}

void page_index::grow() {
  std::vector<slot> old(std::move(slots_));
  slots_.assign(old.size() * 2, slot{});
  mask_ = slots_.size() - 1;
  size_ = 0;
  for (const slot& s : old) {
    if (s.entry != nullptr) insert(s.key, s.entry);
  }
}

}  // namespace detail

using detail::cache_entry;
using detail::cache_key;

page_cache::page_cache(runtime::context& ctx, page_pool& pool, page_cache_options options)
    : ctx_(ctx), pool_(pool), options_(options), index_(options.budget_pages) {
  options_.budget_pages = std::max<std::size_t>(options_.budget_pages, 1);
  options_.max_pages_per_read = std::clamp<std::size_t>(options_.max_pages_per_read, 1, 256);
}

page_cache::~page_cache() {
  if (stats_.reads_in_flight != 0) {
    std::fprintf(stderr, "pagewire: page_cache destroyed with %zu reads in flight\n",
                 stats_.reads_in_flight);
    std::abort();
  }
  for (cache_entry* e : clock_)
    delete e;
}

page_cache_stats page_cache::stats() const {
  page_cache_stats s = stats_;
  s.resident_pages = index_.size();
  return s;
}

cache_entry* page_cache::find(const cache_key& k, const file_version& v) {
  cache_entry* e = index_.find(k);
  if (e == nullptr) return nullptr;
  if (e->version == v) return e;
  ++stats_.stale_dropped;
  remove_entry(e);
  return nullptr;
}

void page_cache::remove_entry(cache_entry* e) {
  index_.erase(e->key);
  cache_entry* last = clock_.back();
  clock_[e->clock_pos] = last;
  last->clock_pos = e->clock_pos;
  clock_.pop_back();
  if (hand_ >= clock_.size()) hand_ = 0;
  e->indexed = false;
  if (!e->filling) delete e;  // a filling entry is deleted by its read
}

bool page_cache::evict_one() {
  std::size_t n = clock_.size();
  for (std::size_t step = 0; step < 2 * n && !clock_.empty(); ++step) {
    if (hand_ >= clock_.size()) hand_ = 0;
    cache_entry* e = clock_[hand_];
    if (e->filling || e->page->use_count() > 1) {
      ++hand_;
    } else if (e->referenced) {
      e->referenced = false;
      ++hand_;
    } else {
      remove_entry(e);
      ++stats_.evictions;
      return true;
    }
  }
  return false;
}

std::size_t page_cache::trim() {
  std::size_t evicted = 0;
  while (index_.size() > options_.budget_pages && evict_one())
    ++evicted;
  return evicted;
}

cache_entry* page_cache::create_entry(const file& f, const file_version& v, std::uint64_t index,
                                      bool demanded) {
  while (index_.size() >= options_.budget_pages) {
    if (evict_one()) continue;
    if (!demanded) return nullptr;  // read-ahead never goes over budget
    break;                          // a demanded page may: everything else is held
  }
  page_ref p = pool_.allocate();
  // The pool can run dry while the cache holds idle pages of its own (a pool shared with other
  // users, or smaller than the budget): a demanded page takes one of those back.
  while (!p && demanded && evict_one())
    p = pool_.allocate();
  if (!p) return nullptr;
  auto* e = new cache_entry();
  e->key = cache_key{f.dev(), f.ino(), index};
  e->version = v;
  e->page = std::move(p);
  e->clock_pos = clock_.size();
  clock_.push_back(e);
  index_.insert(e->key, e);
  return e;
}

void page_cache::start_fill(const std::shared_ptr<const file>& f, std::uint64_t size,
                            std::vector<cache_entry*> run, std::uint64_t resumed_from) {
  auto* op = new detail::fill_op();
  op->cache = this;
  op->f = f;
  op->size = size;
  op->resumed_from = resumed_from;
  op->entries = std::move(run);
  op->contiguous = true;
  for (std::size_t i = 1; i < op->entries.size(); ++i) {
    if (op->entries[i]->page.data() != op->entries[i - 1]->page.data() + kPageSize ||
        op->entries[i]->page->buffer_index() != op->entries[0]->page->buffer_index()) {
      op->contiguous = false;
    }
  }
  runtime::ring* r = ctx_.native_ring();
  if (options_.use_fixed_buffers && op->contiguous && r != nullptr && pool_.registered_on(*r)) {
    op->buf_index = op->entries[0]->page->buffer_index();
  }
  if (!op->contiguous) {
    op->iov.reserve(op->entries.size());
    for (cache_entry* e : op->entries)
      op->iov.push_back(iovec{e->page.data(), kPageSize});
  }
  ++stats_.reads_issued;
  if (op->buf_index >= 0) ++stats_.fixed_reads;
  ++stats_.reads_in_flight;
  ctx_.start(*op);
}

// Creates entries for the missing pages in [first, end) and reads them in runs. `demanded` is
// the one page a reader waits for (known missing, always created; returned); the others are
// read-ahead.
cache_entry* page_cache::fill(const std::shared_ptr<const file>& f, const file_version& v,
                              std::uint64_t first, std::uint64_t end, std::uint64_t demanded) {
  std::vector<cache_entry*> run;
  cache_entry* wanted = nullptr;
  auto flush = [&] {
    if (!run.empty()) start_fill(f, v.size, std::move(run));
    run.clear();
  };
  for (std::uint64_t i = first; i < end; ++i) {
    bool is_demanded = i == demanded;
    if (!is_demanded && find(cache_key{f->dev(), f->ino(), i}, v) != nullptr) {
      flush();
      continue;
    }
    cache_entry* e = create_entry(*f, v, i, is_demanded);
    if (e == nullptr) break;
    if (is_demanded) {
      wanted = e;
    } else {
      ++stats_.readahead_pages;
    }
    run.push_back(e);
    if (run.size() == options_.max_pages_per_read) flush();
  }
  flush();
  return wanted;
}

// Read-ahead plan for an access to `index`; returns [start, end) to read ahead (maybe empty).
static std::pair<std::uint64_t, std::uint64_t> plan(std::uint64_t index, std::uint64_t eof_pages,
                                                    std::size_t max_window, std::uint64_t& next,
                                                    std::uint64_t& ra_end, std::size_t& window) {
  bool sequential = index == next;
  next = index + 1;
  if (max_window == 0) return {0, 0};
  if (!sequential) {
    window = 0;
    ra_end = index + 1;
    return {0, 0};
  }
  window = window == 0 ? std::min<std::size_t>(4, max_window) : std::min(window * 2, max_window);
  if (index + 1 + window / 2 < ra_end) return {0, 0};
  std::uint64_t start = std::max(ra_end, index + 1);
  std::uint64_t end = std::min<std::uint64_t>(index + 1 + window, eof_pages);
  if (start >= end) return {0, 0};
  ra_end = end;
  return {start, end};
}

// Completes `w` with `ec` from the loop. Runs the waiter even when the context drops the task
// at teardown, so the request (and its handler) is always released.
void page_cache::fail_later(detail::page_waiter& w, std::error_code ec) {
  struct failure : runtime::task_node {
    detail::page_waiter* w = nullptr;
    std::error_code ec;
  };
  auto* t = new failure();
  t->w = &w;
  t->ec = ec;
  t->fn = [](runtime::task_node* node, bool) {
    auto* self = static_cast<failure*>(node);
    detail::page_waiter* target = self->w;
    std::error_code err = self->ec;
    delete self;
    target->fn(target, err, slice());
  };
  ctx_.defer(*t);
}

page_cache::file_state& page_cache::state_for(const file& f) {
  if (files_.size() > 4096) files_.clear();  // bounded; only read-ahead and stat state is lost
  return files_[detail::file_id{f.dev(), f.ino()}];
}

file_version page_cache::current_version(const file& f, file_state& st) {
  if (options_.revalidate_after == std::chrono::nanoseconds::max()) return f.version();
  auto now = std::chrono::steady_clock::now();
  // A caller's snapshot other than the one last seen may be newer than our stat: re-stat.
  if (!st.stat_known || !(st.seen == f.version()) ||
      now - st.checked >= options_.revalidate_after) {
    std::error_code ec;
    file_version v = f.current_version(ec);
    if (ec) return f.version();
    st.version = v;
    st.seen = f.version();
    st.checked = now;
    st.stat_known = true;
  }
  return st.version;
}

bool page_cache::read_page(const std::shared_ptr<const file>& f, std::uint64_t page_index,
                           detail::page_waiter& w, slice& out) {
  file_state& st = state_for(*f);
  file_version v = current_version(*f, st);
  return read_page_at(f, v, st, page_index, w, out);
}

bool page_cache::read_page_at(const std::shared_ptr<const file>& f, const file_version& v,
                              file_state& st, std::uint64_t page_index, detail::page_waiter& w,
                              slice& out) {
  std::uint64_t eof_pages = (v.size + kPageSize - 1) / kPageSize;
  if (page_index >= eof_pages) {
    out = slice();
    return true;
  }
  auto [ra_start, ra_end] =
      plan(page_index, eof_pages, options_.readahead_max_pages, st.next, st.ra_end, st.window);
  cache_entry* e = find(cache_key{f->dev(), f->ino(), page_index}, v);
  if (e == nullptr) {
    ++stats_.misses;
    std::uint64_t end = ra_start == page_index + 1 ? ra_end : page_index + 1;
    e = fill(f, v, page_index, end, page_index);  // filling: never evicted by what follows
    if (end == page_index + 1 && ra_start < ra_end) fill(f, v, ra_start, ra_end, page_index);
    if (e == nullptr) {  // the pool is exhausted: fail from the loop, not from here
      fail_later(w, std::make_error_code(std::errc::not_enough_memory));
      return false;
    }
  } else if (!e->filling) {
    ++stats_.hits;
    e->referenced = true;
    out = slice(e->page, 0, e->length);  // pinned before read-ahead may evict
    if (ra_start < ra_end) fill(f, v, ra_start, ra_end, page_index);
    return true;
  } else {
    ++stats_.coalesced;  // a filling entry is never evicted
    if (ra_start < ra_end) fill(f, v, ra_start, ra_end, page_index);
  }
  w.next = e->waiters;
  e->waiters = &w;
  return false;
}

slice page_cache::lookup(const file& f, std::uint64_t page_index) {
  cache_entry* e = index_.find(cache_key{f.dev(), f.ino(), page_index});
  if (e == nullptr) return slice();
  if (e->filling || !(e->version == f.version())) return slice();
  ++stats_.hits;
  e->referenced = true;
  return slice(e->page, 0, e->length);
}

void page_cache::on_filled(detail::fill_op& op, int result) {
  --stats_.reads_in_flight;
  std::vector<std::tuple<detail::page_waiter*, std::error_code, slice>> ready;
  std::vector<cache_entry*> retry;
  std::error_code ec;
  if (result < 0) {
    ec.assign(-result, std::system_category());
    ++stats_.read_errors;
  } else {
    stats_.bytes_read += static_cast<std::uint64_t>(result);
  }
  auto got = static_cast<std::uint64_t>(std::max(result, 0));
  std::uint64_t stopped = op.offset() + got;  // file offset where this read stopped
  bool shrunk = false;
  for (std::size_t i = 0; i < op.entries.size(); ++i) {
    cache_entry* e = op.entries[i];
    std::uint64_t start = i * kPageSize;
    std::uint64_t len = got > start ? std::min<std::uint64_t>(got - start, kPageSize) : 0;
    std::uint64_t page_off = e->key.index * kPageSize;
    // A short read that stopped before the version's end of file is resumed from the page it
    // stopped in, as long as it got further than the read it resumes. One that read nothing, or
    // no further, found the real end of file (the file shrank): the pages keep what exists.
    if (!ec && len < kPageSize && page_off + len < op.size) {
      if (result > 0 && stopped > op.resumed_from) {
        retry.assign(op.entries.begin() + static_cast<std::ptrdiff_t>(i), op.entries.end());
        break;
      }
      shrunk = true;
    }
    e->filling = false;
    e->length = static_cast<std::size_t>(len);
    for (detail::page_waiter* w = e->waiters; w != nullptr;) {
      detail::page_waiter* next = w->next;
      ready.emplace_back(w, ec, ec ? slice() : slice(e->page, 0, e->length));
      w = next;
    }
    e->waiters = nullptr;
    if (ec && e->indexed) {
      remove_entry(e);  // deletes it: not filling any more
    } else if (!e->indexed) {
      delete e;  // dropped as stale while reading; its readers hold their slices
    }
  }
  std::shared_ptr<const file> f = std::move(op.f);
  std::uint64_t size = op.size;
  delete &op;
  if (!retry.empty()) start_fill(f, size, std::move(retry), stopped);
  if (shrunk) {  // the version is out of date: the next async read fstats the file again
    auto it = files_.find(detail::file_id{f->dev(), f->ino()});
    if (it != files_.end()) it->second.stat_known = false;
  }
  trim();
  for (auto& [w, wec, s] : ready)
    w->fn(w, wec, std::move(s));
}

void page_cache::invalidate(const file& f) {
  for (std::size_t i = clock_.size(); i-- > 0;) {
    if (i >= clock_.size()) continue;
    cache_entry* e = clock_[i];
    if (e->key.dev == f.dev() && e->key.ino == f.ino() &&
        (e->filling || e->page->use_count() == 1)) {
      ++stats_.stale_dropped;
      remove_entry(e);
    }
  }
}

// ---- ranges ----------------------------------------------------------------------------------

namespace {

struct range_state;

struct range_part : detail::page_waiter {
  range_state* state = nullptr;
  std::size_t i = 0;
};

struct range_state : runtime::task_node {
  detail::range_waiter* w = nullptr;
  std::uint64_t offset = 0;
  std::uint64_t end = 0;
  std::uint64_t first_index = 0;
  std::vector<slice> pages;
  std::vector<range_part> parts;
  std::size_t pending = 1;  // 1 while launching
  std::error_code ec;

  void finish() {
    chain c;
    if (!ec) {
      for (std::size_t i = 0; i < pages.size(); ++i) {
        std::uint64_t page_start = (first_index + i) * kPageSize;
        slice& s = pages[i];
        std::uint64_t lo = std::max(offset, page_start);
        std::uint64_t hi = std::min(end, page_start + s.size());
        if (hi <= lo) break;  // the file ended early
        c.append(
            s.share(static_cast<std::size_t>(lo - page_start), static_cast<std::size_t>(hi - lo)));
        // A short page is where the file ended when it was read: a later page (cached before
        // the file shrank) would follow with a hole in between.
        if (s.size() < kPageSize) break;
      }
    }
    detail::range_waiter* target = w;
    std::error_code e = ec;
    delete this;
    target->fn(target, e, std::move(c));
  }
  void part_done() {
    if (--pending == 0) finish();
  }
};

void on_part(detail::page_waiter* self, std::error_code ec, slice s) {
  auto* p = static_cast<range_part*>(self);
  range_state* st = p->state;
  if (ec && !st->ec) st->ec = ec;
  st->pages[p->i] = std::move(s);
  st->part_done();
}

}  // namespace

void page_cache::read_range(std::shared_ptr<const file> f, std::uint64_t offset,
                            std::uint64_t length, detail::range_waiter& w) {
  file_state& fs = state_for(*f);
  file_version v = current_version(*f, fs);  // one fstat per range at most
  auto* st = new range_state();
  st->w = &w;
  st->offset = offset;
  st->end = std::min(v.size, offset + std::min(length, ~std::uint64_t{0} - offset));
  st->first_index = offset / kPageSize;
  if (st->end > offset) {
    std::uint64_t last = (st->end - 1) / kPageSize;
    std::size_t n = static_cast<std::size_t>(last - st->first_index + 1);
    st->pages.resize(n);
    st->parts.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      range_part& part = st->parts[i];
      part.fn = &on_part;
      part.state = st;
      part.i = i;
      ++st->pending;
      if (read_page_at(f, v, fs, st->first_index + i, part, st->pages[i])) --st->pending;
    }
  }
  if (--st->pending == 0) {  // every page was a hit: complete from the loop, not from here
    st->pending = 1;
    st->fn = [](runtime::task_node* t, bool invoke) {
      auto* s = static_cast<range_state*>(t);
      if (invoke) {
        s->part_done();
        return;
      }
      detail::range_waiter* target = s->w;  // context torn down: free, never invoke
      delete s;
      if (target->destroy) target->destroy(target);
    };
    ctx_.defer(*st);
  }
}

}  // namespace pagewire::fs
