#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pagewire/apps/sendfile_server/listener.h>

namespace pagewire::sendfile_server {

int open_listen_socket(const std::string& host, std::uint16_t port, std::error_code& ec) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc =
          ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
      rc != 0) {
    ec = std::error_code(rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL, std::system_category());
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      ::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 4096) != 0) {
    ec = std::error_code(errno, std::system_category());
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

struct listener::accept_op final : runtime::operation {
  explicit accept_op(listener& l) : owner(l) {}
  void prepare(io_uring_sqe* sqe) override {
    if (owner.multishot_) {
      io_uring_prep_multishot_accept(sqe, owner.fd_, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(sqe, owner.fd_, nullptr, nullptr, SOCK_CLOEXEC);
    }
  }
  void partial(int result, unsigned) override { owner.on_result(result, false); }
  void complete(int result, unsigned) override { owner.on_result(result, true); }
  listener& owner;
};

listener::listener(runtime::context& ctx, int listen_fd, std::function<void(int)> on_accept)
    : ctx_(ctx),
      fd_(listen_fd),
      on_accept_(std::move(on_accept)),
      accept_(std::make_unique<accept_op>(*this)),
      backoff_timer_(ctx),
      multishot_(ctx.probe().multishot_accept) {}

listener::~listener() {
  if (fd_ >= 0) ::close(fd_);
}

void listener::start() {
  arm();
}

void listener::arm() {
  if (closing_ || paused_ || backing_off_ || accept_->in_flight()) return;
  ctx_.start(*accept_);
}

void listener::pause() {
  paused_ = true;
  if (accept_->in_flight()) ctx_.cancel(*accept_);
}

void listener::resume() {
  if (!paused_) return;
  paused_ = false;
  arm();
}

void listener::close() {
  closing_ = true;
  if (accept_->in_flight()) ctx_.cancel(*accept_);
  backoff_timer_.cancel();
  if (!accept_->in_flight() && fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void listener::on_result(int result, bool final) {
  if (result >= 0) {
    if (closing_) {
      ::close(result);
    } else {
      on_accept_(result);
    }
  } else if (final && !closing_ && !paused_ && result != -ECONNABORTED) {
    backoff();  // EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected: never spin
    return;
  }
  if (!final) return;
  if (closing_) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return;
  }
  arm();  // multishot ended (or single accept done): re-arm unless paused
}

void listener::backoff() {
  backing_off_ = true;
  backoff_timer_.expires_after(std::chrono::milliseconds(50));
  backoff_timer_.async_wait([this](std::error_code) {
    backing_off_ = false;
    arm();
  });
}

}  // namespace pagewire::sendfile_server
