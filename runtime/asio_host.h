#pragma once

/// Hosts a pagewire context inside an existing asio::io_context, so an Asio
/// program adds pagewire without changing its loop: the host waits on the ring
/// fd's readiness (a posix::stream_descriptor on a dup of it) and calls
/// context::poll() when CQEs are there; when the context queues SQEs or tasks it
/// asks (once) for a poll to be posted, which submits them. On the fallback
/// backend the context's operations run on the host io_context directly.
/// While the context is stopped (context::stop(), from any thread) the host stops
/// watching the ring fd (an io_context with no other work then runs out of it);
/// context::restart() resumes it.
///
/// The io_uring ring is set up without DEFER_TASKRUN (completions must show up as
/// ring-fd readiness without the host entering the ring). Ownership: owns the
/// context; destroy it before the io_context; both live on the thread that runs
/// the io_context.

#include <memory>

#include <pagewire/runtime/context.h>

namespace boost::asio {
class io_context;
}

namespace pagewire::runtime {

class asio_host {
 public:
  asio_host(boost::asio::io_context& io, context_options options = {});
  ~asio_host();
  asio_host(const asio_host&) = delete;
  asio_host& operator=(const asio_host&) = delete;

  context& get() noexcept { return *ctx_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  context* ctx_ = nullptr;
};

}  // namespace pagewire::runtime
