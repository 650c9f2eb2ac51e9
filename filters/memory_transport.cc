#include <algorithm>
#include <unistd.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/memory_transport.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/fs/stats.h>

namespace pagewire::filters {

std::pair<std::unique_ptr<memory_transport>, std::unique_ptr<memory_transport>>
memory_transport::make_pair(runtime::context& ctx, fs::page_pool& pool,
                            const memory_transport_options& o) {
  std::unique_ptr<memory_transport> a(new memory_transport(ctx, pool, o));
  memory_transport_options ob = o;
  ob.seed = o.seed * 0x9e3779b97f4a7c15ull + 1;
  std::unique_ptr<memory_transport> b(new memory_transport(ctx, pool, ob));
  a->peer_ = b.get();
  b->peer_ = a.get();
  return {std::move(a), std::move(b)};
}

memory_transport::memory_transport(runtime::context& ctx, fs::page_pool& pool,
                                   const memory_transport_options& o)
    : stream(ctx), pool_(pool), options_(o), rng_(o.seed) {}

memory_transport::~memory_transport() {
  if (peer_) {
    peer_->peer_ = nullptr;
    peer_->peer_closed();
  }
}

void memory_transport::start_write(write_request& r) {
  if (shut_ || !peer_) return r.finish(context(), std::make_error_code(std::errc::broken_pipe), 0);
  fs::chain in = std::move(r.data);
  r.data.clear();
  const std::uint64_t total = in.size();
  // Materialize file ranges (the shim has no socket to splice them into).
  fs::chain bytes;
  page_writer w(pool_);
  for (const fs::segment& s : in.segments()) {
    if (fs::is_memory(s)) {
      bytes.append(w.take());
      bytes.append(std::get<fs::slice>(s));
      continue;
    }
    const fs::file_range& fr = std::get<fs::file_range>(s);
    std::uint64_t done = 0;
    while (done < fr.size()) {
      auto space = w.reserve();
      if (space.empty()) return r.finish(context(), errc::pool_exhausted, 0);
      const std::size_t ask = std::min<std::uint64_t>(space.size(), fr.size() - done);
      const ssize_t n = ::pread(fr.fd(), space.data(), ask, static_cast<off_t>(fr.offset() + done));
      if (n <= 0) return r.finish(context(), errc::truncated, 0);
      w.commit(static_cast<std::size_t>(n));
      fs::stats::record_copy(static_cast<std::size_t>(n), fs::copy_reason::fallback);
      done += static_cast<std::uint64_t>(n);
    }
  }
  bytes.append(w.take());
  while (!bytes.empty()) {
    std::uint64_t n = bytes.size();
    if (options_.max_send > 0) {
      n = std::min<std::uint64_t>(n, 1 + rng_() % options_.max_send);
    }
    ++sends_;
    peer_->arrive(bytes.split(n));
  }
  r.finish(context(), {}, total);
}

void memory_transport::arrive(fs::chain c) {
  queue_.push_back(std::move(c));
  serve();
}

void memory_transport::peer_closed() {
  eof_ = true;
  serve();
}

// Hands the next arrival (or the end) to a waiting reader, from a posted task.
void memory_transport::serve() {
  if (!rw_ || serving_ || (queue_.empty() && !eof_)) return;
  serving_ = true;
  context().post([this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired()) return;
    serving_ = false;
    read_waiter* w = rw_;
    if (!w) return;
    if (!queue_.empty()) {
      fs::chain c = std::move(queue_.front());
      queue_.pop_front();
      rw_ = nullptr;
      return w->fn(w, {}, std::move(c));
    }
    if (eof_) {
      rw_ = nullptr;
      return w->fn(w, errc::eof, {});
    }
  });
}

void memory_transport::start_read(read_waiter& w) {
  if (rw_) return w.fn(&w, errc::busy, {});
  rw_ = &w;
  serve();
}

void memory_transport::start_shutdown(done_waiter& w) {
  shut_ = true;
  if (peer_) peer_->peer_closed();
  context().post([&w] { w.fn(&w, {}); });
}

void memory_transport::cancel() {
  if (!rw_) return;
  context().post([this, alive = std::weak_ptr<char>(alive_)] {
    if (alive.expired() || !rw_) return;
    read_waiter* w = rw_;
    rw_ = nullptr;
    w->fn(w, std::make_error_code(std::errc::operation_canceled), {});
  });
}

}  // namespace pagewire::filters
