#pragma once

/// A worker's own listening socket (SO_REUSEPORT: every worker binds the same address
/// and the kernel spreads connections) and its accept loop: one multishot
/// IORING_OP_ACCEPT (single accepts re-armed where multishot is missing). Accepting
/// pauses while the worker is at its connection limit (resume() re-arms) and backs off
/// for a moment after EMFILE/ENFILE/ENOBUFS/ENOMEM instead of spinning.
///
/// Ownership: owns the listening descriptor. The context outlives it. Threading: the
/// context's loop thread. Errors: open() reports socket/bind/listen errors; accept
/// errors are handled here (backoff) and never reach the worker.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/operation.h>
#include <pagewire/runtime/timer.h>

namespace pagewire::sendfile_server {

/// A bound, listening, non-blocking socket with SO_REUSEPORT; -1 with `ec` on failure.
int open_listen_socket(const std::string& host, std::uint16_t port, std::error_code& ec);

class listener {
 public:
  /// `on_accept(fd)` receives each accepted socket (owned by the callee).
  listener(runtime::context& ctx, int listen_fd, std::function<void(int)> on_accept);
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;
  ~listener();

  void start();
  /// Stops accepting until resume() (the connection limit was reached).
  void pause();
  void resume();
  /// Stops accepting for good and closes the socket once the accept op is done.
  void close();

 private:
  struct accept_op;
  void arm();
  void on_result(int result, bool final);
  void backoff();

  runtime::context& ctx_;
  int fd_;
  std::function<void(int)> on_accept_;
  std::unique_ptr<accept_op> accept_;
  runtime::timer backoff_timer_;
  bool multishot_;
  bool paused_ = false;
  bool closing_ = false;
  bool backing_off_ = false;
};

}  // namespace pagewire::sendfile_server
