#include <arpa/inet.h>
#include <cstdio>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pagewire/apps/sendfile_server/session.h>
#include <pagewire/apps/sendfile_server/worker.h>

namespace pagewire::sendfile_server {
namespace {

std::string peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  char buf[INET6_ADDRSTRLEN] = "-";
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    if (ss.ss_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    }
  }
  return buf;
}

}  // namespace

worker::worker(std::size_t index, const shared_config& config, int listen_fd)
    : index_(index), listen_fd_(listen_fd), config_(config), tls_(config.tls) {}

worker::~worker() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void worker::build() {
  const server_options& o = *config_.options;
  runtime::context_options copts;
  copts.busy_poll = o.busy_poll;
  ctx_ = std::make_unique<runtime::context>(copts);
  fallback_.store(!ctx_->uses_io_uring(), std::memory_order_relaxed);
  const std::size_t cache_pages = o.cache_mb * (std::size_t{1} << 20) / fs::kPageSize / o.threads;
  fs::page_pool_options po;
  // The cache, plus heads in flight, plus the compressed-body LRU.
  po.max_bytes = (cache_pages + 4096) * fs::kPageSize + kCompressedCacheBytes;
  pool_ = std::make_unique<fs::page_pool>(po);
  // TLS and on-the-fly compression must see file bytes, which they read through the cache:
  // with --cache-mb 0 (or a share below one page per thread) it still reads, keeping next
  // to nothing between requests.
  if (cache_pages > 0 || o.tls() || !o.compress.empty()) {
    fs::page_cache_options co;
    co.budget_pages = cache_pages;  // the cache keeps at least one page
    cache_ = std::make_unique<fs::page_cache>(*ctx_, *pool_, co);
  }
  std::error_code ec;
  const fs::open_file_cache_options fo;
  files_ = fs::open_file_cache::create(o.root.c_str(), fo, ec);
  heads_ = std::make_unique<head_arena>(*pool_);
  responder_options ro;
  ro.compress = o.compress;
  ro.list_dirs = o.list_dirs;
  ro.stats = o.stats;
  ro.absent_ttl = fo.revalidate_after;  // absent siblings revalidate with the open files
  // Gathered page-cache bodies beat a file range only while they are one page on plain HTTP
  // (the server's copy into the socket and the reader's pull of those just-written lines cost
  // more than sendfile from 8 KiB up: responder_options). Under TLS every file byte passes
  // through the cache anyway.
  ro.page_cache_max_file = cache_pages == 0 ? 0
                           : o.tls()        ? responder_options::kPageCacheMaxFileTls
                                            : responder_options::kPageCacheMaxFilePlain;
  ro.compress_on_the_fly = cache_ != nullptr;  // files are read through the page cache
  responder_ = std::make_unique<responder>(ro, *files_, *heads_, cache_.get(), config_.stats_json);
  pipes_ = std::make_unique<net::pipe_pool>(config_.net);
  if (ctx_->probe().buf_ring) {
    recv_ring_ = net::recv_buffer_ring::create(*ctx_, config_.net, 0, ec);  // null: plain recv
  }
  stop_timer_ = std::make_unique<runtime::timer>(*ctx_);
  if (config_.access_log) log_ = &config_.access_log->at(index_);
}

void worker::run(std::error_code& ec) {
  build();
  if (!files_) {
    ec = std::make_error_code(std::errc::no_such_file_or_directory);
    teardown();
    return;
  }
  acceptor_ = std::make_unique<net::acceptor>(*ctx_, listen_fd_, config_.net);
  acceptor_->start([this](std::error_code ec, int fd) {
    if (!ec) {
      on_accept(fd);
    } else if (ec == std::errc::operation_canceled) {
      close_listen_socket();  // stopped: new connections are refused from now on
    }                         // other errors: the acceptor backs off and re-arms by itself
  });
  ctx_->work_started();  // keep running while idle; begin_stop() finishes the work
  {
    std::lock_guard lock(post_mu_);
    accepting_posts_ = true;
    if (stop_requested_.load()) ctx_->post([this] { begin_stop(); });
  }
  ctx_->run();
  teardown();
}

void worker::request_stop() {
  std::lock_guard lock(post_mu_);
  if (stop_requested_.exchange(true)) return;
  if (accepting_posts_) ctx_->post([this] { begin_stop(); });
}

void worker::replace_tls(std::shared_ptr<filters::tls_context> tls) {
  std::lock_guard lock(post_mu_);
  if (!accepting_posts_) {  // the loop has not started (its lock orders this) or has ended
    tls_ = std::move(tls);
    return;
  }
  ctx_->post([this, tls = std::move(tls)]() mutable { tls_ = std::move(tls); });
}

void worker::on_accept(int fd) {
  worker_counters::bump(counters_.accepted);
  if (stopping_) {
    ::close(fd);
    return;
  }
  if (session_count_ >= config_.options->max_connections) {
    // A multishot accept hands over what the kernel accepted before pause_accepting()
    // cancelled it (a whole backlog at once): those wait here, unserved, as in the backlog.
    waiting_.push_back(fd);
    return;
  }
  open_session(fd);
}

void worker::open_session(int fd) {
  std::string remote = log_ ? peer_address(fd) : std::string("-");
  auto* s = new session(*this, fd, std::move(remote));
  s->next = sessions_;
  if (sessions_) sessions_->prev = s;
  sessions_ = s;
  ++session_count_;
  worker_counters::bump(counters_.open_connections);
  if (session_count_ >= config_.options->max_connections) acceptor_->pause_accepting();
  s->start();
}

void worker::on_session_closed(session* s) {
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    sessions_ = s->next;
  }
  if (s->next) s->next->prev = s->prev;
  delete s;
  --session_count_;
  worker_counters::drop(counters_.open_connections);
  if (!stopping_) {
    const std::size_t max = config_.options->max_connections;
    while (!waiting_.empty() && session_count_ < max) {
      const int fd = waiting_.front();
      waiting_.pop_front();
      open_session(fd);
    }
    if (session_count_ < max) acceptor_->resume_accepting();
  }
  maybe_finish();
}

void worker::close_waiting() {
  for (int fd : waiting_)
    ::close(fd);
  waiting_.clear();
}

void worker::close_listen_socket() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void worker::begin_stop() {
  if (stopping_) return;
  stopping_ = true;
  acceptor_->stop();
  close_waiting();  // never served: they go as the listen backlog does
  for (session* s = sessions_; s;) {
    session* next = s->next;  // stop_gracefully may not destroy synchronously, but be safe
    s->stop_gracefully();
    s = next;
  }
  stop_timer_->expires_after(config_.options->shutdown_timeout);
  stop_timer_->async_wait([this](std::error_code ec) {
    if (ec) return;  // cancelled: everything finished in time
    for (session* s = sessions_; s;) {
      session* next = s->next;
      s->abort();
      s = next;
    }
  });
  maybe_finish();
}

void worker::maybe_finish() {
  if (!stopping_ || session_count_ > 0) return;
  stop_timer_->cancel();
  ctx_->work_finished();
  ctx_->stop();
}

void worker::note_truncated() {
  worker_counters::bump(counters_.truncated);
  if (truncation_logged_) return;
  truncation_logged_ = true;
  std::fprintf(stderr, "sendfile_server: a file shrank while being served; connection closed\n");
}

bool worker::admit_compression(std::uint64_t bytes) {
  if (compressing_bytes_ > 0 && compressing_bytes_ + bytes > kCompressingBytes) return false;
  compressing_bytes_ += bytes;
  return true;
}

void worker::end_compression(std::uint64_t bytes) {
  compressing_bytes_ -= bytes;
}

void worker::count_request() {
  worker_counters::bump(counters_.requests);
  const auto& s = ctx_->stats();
  counters_.polled_wakeups.store(s.polled_wakeups.load(std::memory_order_relaxed),
                                 std::memory_order_relaxed);
  counters_.polled_idle.store(s.polled_idle.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
}

void worker::mirror_pipe_stats() {
  const net::pipe_pool_stats s = pipes_->stats();
  counters_.pipes_created.store(s.created, std::memory_order_relaxed);
  counters_.pipes_reused.store(s.reused, std::memory_order_relaxed);
  counters_.pipes_discarded.store(s.discarded, std::memory_order_relaxed);
  counters_.pipes_undersized.store(s.undersized, std::memory_order_relaxed);
  counters_.pipes_idle.store(s.idle, std::memory_order_relaxed);
}

void worker::teardown() {
  {
    std::lock_guard lock(post_mu_);
    accepting_posts_ = false;
  }
  if (acceptor_) acceptor_->stop();
  ctx_->shutdown();  // reaps every operation still in flight (page cache reads, timers)
  acceptor_.reset();
  close_waiting();
  close_listen_socket();
  stop_timer_.reset();
  ctx_->shutdown();
  compressed_.clear();  // its pages go back before the pool does
  responder_.reset();
  recv_ring_.reset();
  pipes_.reset();
  heads_.reset();
  cache_.reset();
  files_.reset();
  ctx_.reset();
  pool_.reset();
}

}  // namespace pagewire::sendfile_server
