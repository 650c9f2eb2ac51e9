#pragma once

/// acceptor: accepts connections on one listening socket for one context. Multishot
/// IORING_OP_ACCEPT (one SQE, one CQE per connection), re-armed whenever the kernel ends it;
/// a plain one-accept-per-SQE loop where multishot is missing (old kernels). New sockets are
/// SOCK_NONBLOCK | SOCK_CLOEXEC.
///
/// Descriptor exhaustion (EMFILE, ENFILE, ENOBUFS, ENOMEM) never spins: the acceptor closes its
/// reserve descriptor, accepts the waiting connection and closes it at once (the peer sees a
/// reset instead of hanging in the backlog), reopens the reserve, and pauses accepting for
/// options::accept_backoff (a timer) before re-arming. Other errors reach the handler and also
/// pause before the next arm.
///
/// pause_accepting() stops taking connections (they wait in the listen backlog) until
/// resume_accepting(): how a server holds accepting at its connection limit.
///
/// listen_tcp() makes a listener with SO_REUSEADDR and, when asked, SO_REUSEPORT, so N threads
/// can each own a listener on the same port (one acceptor per thread; the kernel spreads
/// connections).
///
/// Ownership: the acceptor does not own the listening fd; the fd and the context outlive it.
/// Accepted fds belong to the handler. Threading: the loop thread of its context. Lifetime:
/// destroy only when !running() (after stop()'s final ECANCELED call of the handler).

#include <cstdint>
#include <functional>
#include <memory>
#include <system_error>

#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

namespace pagewire::net {

/// socket + SO_REUSEADDR (+ SO_REUSEPORT) + bind + listen on `host` (an IPv4 or IPv6 literal)
/// and `port` (0: any). O_NONBLOCK | O_CLOEXEC. Returns the fd, or -1 with `ec` set. The bound
/// port is written back to `port`. With `reuse_port`, any SO_REUSEPORT socket of the same user
/// may join the port, another process's included; sendfile_server's listener.cc shows how to
/// refuse a port that is already in use first.
int listen_tcp(const char* host, std::uint16_t& port, bool reuse_port, int backlog,
               std::error_code& ec);

struct acceptor_stats {
  std::uint64_t accepted = 0;
  std::uint64_t arms = 0;       ///< accept SQEs submitted (multishot arms or single accepts)
  std::uint64_t exhausted = 0;  ///< EMFILE / ENFILE / ENOBUFS / ENOMEM results
  std::uint64_t shed = 0;       ///< connections accepted and closed at once to drain the backlog
  std::uint64_t pauses = 0;     ///< backoff timers started
  std::uint64_t errors = 0;     ///< other errors handed to the handler
};

class acceptor {
 public:
  /// Called with (no error, new fd) per connection; with an error for failures the acceptor
  /// survives (it pauses and retries); once with ECANCELED after stop(), when nothing of the
  /// acceptor is in flight any more. A cancel from outside (the context's shutdown or
  /// destructor, context::cancel_fd on the listener) stops it the same way.
  using handler = std::function<void(std::error_code, int fd)>;

  acceptor(runtime::context& ctx, int listen_fd, const options& opts);
  acceptor(const acceptor&) = delete;
  acceptor& operator=(const acceptor&) = delete;
  ~acceptor();

  void start(handler h);
  void stop();
  /// Takes no connection until resume_accepting() (cancels the armed accept). Idempotent.
  void pause_accepting();
  /// Re-arms after pause_accepting(), unless stopping or inside a backoff pause (which re-arms
  /// by itself when it ends).
  void resume_accepting();
  bool accepting_paused() const noexcept { return held_; }
  bool running() const noexcept { return running_; }
  bool multishot() const noexcept { return multishot_; }
  const acceptor_stats& stats() const noexcept { return stats_; }

 private:
  struct accept_op;
  struct pause_op;
  friend struct accept_op;
  friend struct pause_op;

  void arm();
  void on_result(int result, bool last);
  void shed_one();
  void back_off();
  void on_backoff_done(int result);
  void cancel_accept();  // cancels the accept in flight, noting that the acceptor asked
  void maybe_stopped();

  runtime::context& ctx_;
  const options& opts_;
  int listen_fd_;
  int reserve_fd_ = -1;
  bool multishot_;
  std::unique_ptr<accept_op> accept_;
  std::unique_ptr<pause_op> pause_;
  handler handler_;
  bool running_ = false;
  bool stopping_ = false;
  bool stop_posted_ = false;  // stop()'s final call is queued on the loop: only it makes it
  bool pause_next_ = false;
  bool held_ = false;             // pause_accepting() until resume_accepting()
  bool cancelled_by_us_ = false;  // the accept in flight was cancelled by the acceptor itself
  acceptor_stats stats_;
};

}  // namespace pagewire::net
