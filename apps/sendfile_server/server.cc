#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pagewire/apps/sendfile_server/server.h>
#include <pagewire/filters/ktls.h>
#include <pagewire/filters/tls_context.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/address.h>

namespace pagewire::sendfile_server {
namespace {

std::uint16_t bound_port(int fd) {
  net::tcp_address a;
  a.size = sizeof a.storage;
  return ::getsockname(fd, a.data(), &a.size) == 0 ? a.port() : 0;
}

std::shared_ptr<filters::tls_context> load_tls(const server_options& o, std::string& error) {
  filters::tls_options to;
  to.role = filters::tls_role::server;
  to.cert_file = o.tls_cert;
  to.key_file = o.tls_key;
  std::error_code ec;
  std::string detail;
  auto tls = filters::tls_context::create(to, ec, &detail);
  if (!tls) error = "--tls-cert/--tls-key: " + ec.message() + (detail.empty() ? "" : ": " + detail);
  return tls;
}

// drop_privileges, then a check that the workers, which open the root from its path as the
// new account, will be able to.
bool become(const account& who, const std::string& root, std::string& error) {
  if (!drop_privileges(who, error)) return false;
  const int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    error = "--user " + who.user + ": cannot open --root '" + root + "': " + std::strerror(err);
    return false;
  }
  ::close(fd);
  return true;
}

}  // namespace

server::server(server_options options) : options_(std::move(options)) {
  config_.options = &options_;
  config_.net.header_timeout = options_.header_timeout;
  config_.net.idle_timeout = options_.idle_timeout;
  config_.net.send_timeout = options_.send_timeout;
  config_.net.notsent_lowat = options_.notsent_lowat;
  config_.stats_json = [this](std::string& out) { render_stats(out); };
}

server::~server() {
  stop();
  std::string ignored;
  wait(ignored);
}

bool server::start(std::string& error) {
  if (const auto ec = config_.net.validate()) {
    error = "net options: " + ec.message();
    return false;
  }
  if (options_.tls()) {
    config_.tls = load_tls(options_, error);
    if (!config_.tls) return false;
  }
  if (!options_.access_log.empty()) {
    std::error_code ec;
    log_ = access_log_writer::open(options_.access_log, options_.threads, ec);
    if (!log_) {
      error = "--access-log: cannot open '" + options_.access_log + "': " + ec.message();
      return false;
    }
    config_.access_log = log_.get();
  }
  std::vector<int> fds;
  std::uint16_t port = options_.port;
  for (std::size_t i = 0; i < options_.threads; ++i) {
    std::error_code ec;
    const int fd = open_listen_socket(options_.host, port, i == 0, ec);
    if (fd < 0) {
      for (int f : fds)
        ::close(f);
      error = "--listen: cannot listen on " + options_.host + ":" + std::to_string(port) + ": " +
              ec.message();
      return false;
    }
    if (i == 0) port = port_ = bound_port(fd);
    fds.push_back(fd);
  }
  // Everything only root may open is open: from here on, the account of --user.
  if (options_.run_as && !become(*options_.run_as, options_.root, error)) {
    for (int f : fds)
      ::close(f);
    return false;
  }
  errors_.resize(options_.threads);
  for (std::size_t i = 0; i < options_.threads; ++i)
    workers_.push_back(std::make_unique<worker>(i, config_, fds[i]));
  for (std::size_t i = 0; i < options_.threads; ++i)
    threads_.emplace_back([this, i] { workers_[i]->run(errors_[i]); });
  return true;
}

void server::stop() {
  for (auto& w : workers_)
    w->request_stop();
}

bool server::wait(std::string& error) {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
  if (log_) log_->stop();
  for (const auto& ec : errors_) {
    if (ec) {
      error = "worker failed: " + ec.message();
      return false;
    }
  }
  return true;
}

void server::reopen_access_log() {
  if (log_) log_->reopen();
}

bool server::reload_tls(std::string& error) {
  if (!options_.tls()) return true;
  auto tls = load_tls(options_, error);
  if (!tls) {
    tls_reload_errors_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  for (auto& w : workers_)
    w->replace_tls(tls);
  tls_reloads_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void server::render_stats(std::string& out) const {
  std::vector<const worker_counters*> counters;
  bool fallback = false;
  for (const auto& w : workers_) {
    counters.push_back(&w->counters());
    fallback = fallback || w->fallback_backend();
  }
  stats_context c;
  c.busy_poll_us = static_cast<std::uint64_t>(options_.busy_poll.count());
  if (log_) {  // set before the workers start, kept until the server is destroyed
    c.log_write_errors = log_->write_errors();
    c.log_reopens = log_->reopens();
    c.log_reopen_errors = log_->reopen_errors();
  }
  c.workers = counters;
  c.copied_bytes = fs::stats::copied_bytes();
  c.fallback_backend = fallback;
  c.threads = workers_.size();
  c.tls = options_.tls();
  if (c.tls) c.ktls_reason = filters::probe_ktls().reason();
  c.tls_reloads = tls_reloads_.load(std::memory_order_relaxed);
  c.tls_reload_errors = tls_reload_errors_.load(std::memory_order_relaxed);
  render_stats_json(c, out);
}

}  // namespace pagewire::sendfile_server
