#pragma once

/// page_cache: a user-space cache of file pages for the layers that must see file bytes (gzip,
/// zstd, userspace TLS). Pages are keyed by (device, inode, page index) and tagged with the
/// file's version (size, mtime, ctime): a lookup with another version never sees the old bytes
/// (the stale entry is dropped and the page re-read). Misses are filled by reads through a
/// runtime::context (READ_FIXED into registered pool pages when the pool is registered on the
/// context's ring, READV or READ otherwise); concurrent misses of one page share one read;
/// sequential access reads ahead (a window that doubles up to readahead_max_pages).
///
/// Budget and eviction: the cache keeps at most budget_pages pages alive by itself (CLOCK). A page
/// that a slice holds (use_count > 1) or that a read is filling is never evicted; when every page
/// is held, a demanded page is still read (the cache runs over budget by held pages only and
/// shrinks as they are released); read-ahead never goes over budget.
///
/// Staleness: async reads key pages by the file's version as fstat last saw it, re-checked at
/// most every options.revalidate_after (zero: on every async read; nanoseconds::max(): trust the
/// caller's `file` snapshot, e.g. from open_file_cache). A file changed in place is therefore
/// re-read within that interval even through an old `file`; a file replaced by rename is a new
/// inode, which open_file_cache picks up. lookup() never stats: it matches the caller's snapshot.
/// A file that shrank after its version was taken (truncated, `cat new > file`) is read as far
/// as it now goes, without error: the page holding the real end of file is short, the pages
/// after it are empty (cached so, under that version), async_read's chain is shorter than the
/// version's size, and the next async read fstats the file again.
///
/// Threading: one cache per context; every member runs on that context's loop thread. Slices it
/// returns are ordinary refcounted values and may travel to other threads.
/// Lifetime: the context, the pool and the files outlive the cache; destroy the cache only when
/// none of its reads is in flight (stats().reads_in_flight == 0, e.g. after the context ran dry).
/// Errors: std::error_code from the read (or ENOMEM when the pool is exhausted).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sys/types.h>
#include <system_error>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/append.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/slice.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>

namespace pagewire::fs {

namespace asio = boost::asio;

struct page_cache_options {
  /// Pages the cache keeps alive by itself (4 KiB each).
  std::size_t budget_pages = 4096;
  /// Largest read-ahead window in pages; 0 disables read-ahead.
  std::size_t readahead_max_pages = 32;
  /// Most pages one read covers.
  std::size_t max_pages_per_read = 32;
  /// Use READ_FIXED when the pool is registered on the context's ring.
  bool use_fixed_buffers = true;
  /// async reads fstat a file at most this often and key its pages by the version found, so a
  /// file changed in place is re-read even through an old `file` snapshot. Zero: every async
  /// read (one fstat per async_read range); nanoseconds::max(): trust the caller's snapshot.
  std::chrono::nanoseconds revalidate_after = std::chrono::seconds(1);
};

struct page_cache_stats {
  std::uint64_t hits = 0;             ///< page ready when asked
  std::uint64_t misses = 0;           ///< page had to be read (a new read was started)
  std::uint64_t coalesced = 0;        ///< request joined a read already in flight
  std::uint64_t evictions = 0;        ///< pages dropped by CLOCK
  std::uint64_t stale_dropped = 0;    ///< pages dropped because the file's version changed
  std::uint64_t reads_issued = 0;     ///< read operations started
  std::uint64_t fixed_reads = 0;      ///< of which READ_FIXED
  std::uint64_t bytes_read = 0;       ///< bytes the kernel put into cache pages
  std::uint64_t readahead_pages = 0;  ///< pages read ahead of demand
  std::uint64_t read_errors = 0;
  std::size_t resident_pages = 0;  ///< pages indexed now (filling ones included)
  std::size_t reads_in_flight = 0;
};

namespace detail {

struct cache_entry;
struct fill_op;

/// A request waiting for one page; `fn` runs once on the loop thread with the page's slice
/// (empty past end of file) or an error.
struct page_waiter {
  void (*fn)(page_waiter* self, std::error_code ec, slice s) = nullptr;
  page_waiter* next = nullptr;
};

/// Receives a whole range (async_read's core).
struct range_waiter {
  void (*fn)(range_waiter* self, std::error_code ec, chain c) = nullptr;
  /// Frees the request without invoking it (the context was destroyed before it could run).
  void (*destroy)(range_waiter* self) = nullptr;
};

struct cache_key {
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t index = 0;
  friend bool operator==(const cache_key&, const cache_key&) = default;
};

inline std::uint64_t mix64(std::uint64_t x) noexcept {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

inline std::uint64_t hash_key(const cache_key& k) noexcept {
  return mix64(k.index ^ mix64(static_cast<std::uint64_t>(k.ino) ^
                               (static_cast<std::uint64_t>(k.dev) << 32)));
}

/// Open-addressing map cache_key -> entry (linear probing, backward-shift erase): one cache line
/// per lookup on the hot path. Grows at half load; never shrinks.
class page_index {
 public:
  explicit page_index(std::size_t expected);
  cache_entry* find(const cache_key& k) const noexcept;
  void insert(const cache_key& k, cache_entry* e);
  void erase(const cache_key& k) noexcept;
  std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    cache_key key;
    cache_entry* entry = nullptr;
  };
  void grow();
  std::vector<slot> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

struct file_id {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const file_id&, const file_id&) = default;
};
struct file_id_hash {
  std::size_t operator()(const file_id& f) const noexcept {
    return static_cast<std::size_t>(f.ino * 0x9e3779b97f4a7c15ull ^ f.dev);
  }
};

}  // namespace detail

class page_cache {
 public:
  page_cache(runtime::context& ctx, page_pool& pool, page_cache_options options = {});
  page_cache(const page_cache&) = delete;
  page_cache& operator=(const page_cache&) = delete;
  ~page_cache();

  /// Synchronous hit path: the cached page `page_index` of `f` (its version), or an empty slice
  /// when it is not ready. Starts no I/O.
  slice lookup(const file& f, std::uint64_t page_index);

  /// Page `page_index` of `f`: completion signature void(std::error_code, slice). The slice
  /// covers the page's valid bytes (fewer than 4 KiB on the last page, empty past the end).
  /// Any CompletionToken; the handler runs through its associated executor (default: the
  /// context's), never inside this call.
  template <class Token>
  auto async_read_page(std::shared_ptr<const file> f, std::uint64_t page_index, Token&& token);

  /// Bytes [offset, offset + length) of `f`, clipped to its size, as a chain of page slices:
  /// completion signature void(std::error_code, chain). The first error wins. The chain ends
  /// early, without error, where the file now ends before that size (it shrank).
  template <class Token>
  auto async_read(std::shared_ptr<const file> f, std::uint64_t offset, std::uint64_t length,
                  Token&& token);

  /// Callback core of async_read_page. Returns true on a hit (or past EOF): `out` is set and
  /// `w` is not used. Otherwise `w->fn` runs later on the loop thread; `w` must stay alive.
  bool read_page(const std::shared_ptr<const file>& f, std::uint64_t page_index,
                 detail::page_waiter& w, slice& out);
  /// Callback core of async_read; `w->fn` runs later (from the loop), exactly once, or, when the
  /// context is destroyed first, `w->destroy` does.
  void read_range(std::shared_ptr<const file> f, std::uint64_t offset, std::uint64_t length,
                  detail::range_waiter& w);

  /// Drops every page of `f` (any version) that nothing holds.
  void invalidate(const file& f);
  /// Evicts until within budget (as far as held pages allow); returns pages evicted.
  std::size_t trim();

  page_cache_stats stats() const;
  runtime::context& context() noexcept { return ctx_; }
  page_pool& pool() noexcept { return pool_; }
  const page_cache_options& options() const noexcept { return options_; }

 private:
  friend struct detail::fill_op;
  struct file_state {
    std::uint64_t next = 0;    // page expected next if access is sequential
    std::uint64_t ra_end = 0;  // pages below this were already requested
    std::size_t window = 0;
    file_version version;  // from the last fstat
    file_version seen;     // the caller's snapshot at that fstat
    std::chrono::steady_clock::time_point checked;
    bool stat_known = false;
  };

  file_state& state_for(const file& f);
  void fail_later(detail::page_waiter& w, std::error_code ec);
  file_version current_version(const file& f, file_state& st);
  bool read_page_at(const std::shared_ptr<const file>& f, const file_version& v, file_state& st,
                    std::uint64_t page_index, detail::page_waiter& w, slice& out);
  detail::cache_entry* find(const detail::cache_key& k, const file_version& v);
  detail::cache_entry* create_entry(const file& f, const file_version& v, std::uint64_t index,
                                    bool demanded);
  void remove_entry(detail::cache_entry* e);
  bool evict_one();
  detail::cache_entry* fill(const std::shared_ptr<const file>& f, const file_version& v,
                            std::uint64_t first, std::uint64_t end, std::uint64_t demanded);
  void start_fill(const std::shared_ptr<const file>& f, std::uint64_t size,
                  std::vector<detail::cache_entry*> run, std::uint64_t resumed_from = 0);
  void on_filled(detail::fill_op& op, int result);

  runtime::context& ctx_;
  page_pool& pool_;
  page_cache_options options_;
  detail::page_index index_;
  std::vector<detail::cache_entry*> clock_;
  std::size_t hand_ = 0;
  std::unordered_map<detail::file_id, file_state, detail::file_id_hash> files_;
  page_cache_stats stats_;
};

// ---- token adapters ------------------------------------------------------------------------

namespace detail {

/// Holds a handler and tracked work on its associated executor (default: the context's) while
/// the request waits; delivers through that executor, like runtime/async.h.
template <class Handler>
class pending_handler {
 public:
  pending_handler(Handler&& h, runtime::context& ctx)
      : handler_(std::move(h)),
        work_(asio::prefer(asio::get_associated_executor(handler_, ctx.get_executor()),
                           asio::execution::outstanding_work.tracked)) {}

  /// Invokes inline when the executor allows (on the loop), else posts.
  template <class Value>
  void dispatch(std::error_code ec, Value v) {
    auto ex = asio::get_associated_executor(handler_, work_);
    asio::dispatch(ex, asio::append(std::move(handler_), ec, std::move(v)));
  }
  /// Never inside the caller (hits found during initiation).
  template <class Value>
  void post(std::error_code ec, Value v) {
    auto ex = asio::get_associated_executor(handler_, work_);
    asio::post(ex, asio::append(std::move(handler_), ec, std::move(v)));
  }

 private:
  Handler handler_;
  std::decay_t<decltype(asio::prefer(
      std::declval<asio::associated_executor_t<Handler, runtime::executor>>(),
      asio::execution::outstanding_work.tracked))>
      work_;
};

template <class Handler>
struct page_request : page_waiter {
  page_request(Handler&& h, runtime::context& ctx) : pending(std::move(h), ctx) {
    fn = &page_request::done;
  }
  static void done(page_waiter* self, std::error_code ec, slice s) {
    auto* r = static_cast<page_request*>(self);
    pending_handler<Handler> p(std::move(r->pending));
    delete r;
    p.dispatch(ec, std::move(s));
  }
  pending_handler<Handler> pending;
};

template <class Handler>
struct range_request : range_waiter {
  range_request(Handler&& h, runtime::context& ctx) : pending(std::move(h), ctx) {
    fn = &range_request::done;
    destroy = [](range_waiter* self) { delete static_cast<range_request*>(self); };
  }
  static void done(range_waiter* self, std::error_code ec, chain c) {
    auto* r = static_cast<range_request*>(self);
    pending_handler<Handler> p(std::move(r->pending));
    delete r;
    p.dispatch(ec, std::move(c));
  }
  pending_handler<Handler> pending;
};

}  // namespace detail

template <class Token>
auto page_cache::async_read_page(std::shared_ptr<const file> f, std::uint64_t page_index,
                                 Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, slice)>(
      [this](auto handler, std::shared_ptr<const file> f, std::uint64_t index) {
        using H = std::decay_t<decltype(handler)>;
        auto* req = new detail::page_request<H>(std::move(handler), ctx_);
        slice out;
        if (read_page(f, index, *req, out)) {
          detail::pending_handler<H> p(std::move(req->pending));
          delete req;
          p.post(std::error_code(), std::move(out));
        }
      },
      token, std::move(f), page_index);
}

template <class Token>
auto page_cache::async_read(std::shared_ptr<const file> f, std::uint64_t offset,
                            std::uint64_t length, Token&& token) {
  return asio::async_initiate<Token, void(std::error_code, chain)>(
      [this](auto handler, std::shared_ptr<const file> f, std::uint64_t off, std::uint64_t len) {
        using H = std::decay_t<decltype(handler)>;
        auto* req = new detail::range_request<H>(std::move(handler), ctx_);
        read_range(std::move(f), off, len, *req);
      },
      token, std::move(f), offset, length);
}

}  // namespace pagewire::fs
