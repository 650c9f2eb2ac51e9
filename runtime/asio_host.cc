#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>

#include <pagewire/runtime/asio_host.h>

namespace asio = boost::asio;

namespace pagewire::runtime {

struct asio_host::impl {
  explicit impl(asio::io_context& i) : io(i) {}
  asio::io_context& io;
  std::unique_ptr<context> ctx;
  std::unique_ptr<asio::posix::stream_descriptor> ring_fd;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  bool kick_pending = false;
  bool waiting = false;  // an async_wait on the ring fd is pending

  // A stopped context reaps nothing, so the ring fd may stay readable: the wait is re-armed
  // only while the context runs (restart() kicks, and the kick re-arms it).
  void poll_now() {
    kick_pending = false;
    // On the fallback, poll() runs host handlers, this one among them: the poll already
    // running hands over whatever the kick was for before it returns.
    if (ctx->running_in_this_thread()) return;
    ctx->poll();
    if (ring_fd && !waiting && !ctx->stopped()) arm();
  }
  void arm() {
    waiting = true;
    ring_fd->async_wait(asio::posix::stream_descriptor::wait_read,
                        [this, a = alive](const boost::system::error_code& ec) {
                          if (!*a) return;
                          waiting = false;
                          if (!ec) poll_now();
                        });
  }
  static void kick(void* p) {
    auto* self = static_cast<impl*>(p);
    if (self->kick_pending) return;
    self->kick_pending = true;
    asio::post(self->io, [self, a = self->alive] {
      if (*a) self->poll_now();
    });
  }
};

asio_host::asio_host(asio::io_context& io, context_options options) : impl_(new impl(io)) {
  // Completions must surface as ring-fd readiness while the host sleeps in
  // epoll_wait: DEFER_TASKRUN would hold them until we enter the ring, and
  // COOP_TASKRUN queues task work without interrupting the sleep.
  options.ring.defer_taskrun = false;
  options.ring.coop_taskrun = false;
  options.fallback_host = &io;
  impl_->ctx = std::make_unique<context>(options);
  ctx_ = impl_->ctx.get();
  ctx_->set_kick(&impl::kick, impl_.get());
  if (ring* r = ctx_->native_ring()) {
    const int fd = ::fcntl(r->fd(), F_DUPFD_CLOEXEC, 0);
    impl_->ring_fd = std::make_unique<asio::posix::stream_descriptor>(io, fd);
    impl_->arm();
  }
  impl::kick(impl_.get());
}

asio_host::~asio_host() {
  *impl_->alive = false;
  ctx_->set_kick(nullptr, nullptr);
  if (impl_->ring_fd) {
    boost::system::error_code ec;
    impl_->ring_fd->cancel(ec);
    impl_->ring_fd.reset();
  }
  impl_->ctx.reset();
}

}  // namespace pagewire::runtime
