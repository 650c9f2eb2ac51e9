#pragma once

/// async_connect_tcp: opens a TCP connection to an IP literal and port (tcp_address; no name
/// lookup) with IORING_OP_CONNECT, or on the epoll fallback a non-blocking connect and a wait
/// for the socket to become writable. The client side of what acceptor is to a server: the fd
/// it yields goes to a net::connection.
///
/// Completion: void(std::error_code, int fd), through any Asio CompletionToken (a callback,
/// asio::use_awaitable, ...). On success `fd` is a connected socket, O_NONBLOCK | O_CLOEXEC,
/// owned by the caller from then on. On an error `fd` is -1 and no descriptor is left open:
/// std::errc::invalid_argument for a host that is not an IP literal, the socket(2) error, or
/// the connect's (ECONNREFUSED, ENETUNREACH, ...). A `timeout` > 0 ends a connect still going
/// after it (a peer that never answers the SYN) with ECANCELED, as does a cancellation through
/// the handler's cancellation slot. Even an error found at once completes through the loop,
/// never inside the call.
///
/// Threading: call on the loop thread of `ctx`; the handler runs there (or on its associated
/// executor). Lifetime: `ctx` outlives the operation; nothing else needs to.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <liburing.h>

#include <pagewire/net/address.h>
#include <pagewire/runtime/async.h>
#include <pagewire/runtime/context.h>
#include <pagewire/runtime/executor.h>

namespace pagewire::net {
namespace detail {

/// The composed operation: socket, then one connect SQE; closes the socket on any error.
struct connect_tcp_op {
  runtime::context& ctx;
  tcp_address addr;
  std::error_code parse_error;
  std::chrono::nanoseconds timeout;
  int fd = -1;
  bool failed_early = false;  // set before the post that reports it from the loop

  template <class Self>
  void operator()(Self& self) {  // the start, or the resumption after a failure found at once
    if (failed_early) {
      self.complete(parse_error, -1);
      return;
    }
    if (!parse_error) {
      fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) parse_error.assign(errno, std::system_category());
    }
    if (parse_error) {  // complete from the loop, not from inside async_connect_tcp
      failed_early = true;
      boost::asio::post(ctx.get_executor(), std::move(self));
      return;
    }
    // The kernel reads the address when the SQE is submitted, later than this call: the copy
    // in the prep function, which the operation keeps until it completes, is what it reads.
    runtime::async_sqe(
        ctx,
        [s = fd, a = addr](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, s, a.data(), a.size); },
        std::move(self), timeout);
  }

  template <class Self>
  void operator()(Self& self, std::error_code ec, int) {  // the connect completed
    const int connected = std::exchange(fd, -1);
    if (ec) {
      ::close(connected);
      self.complete(ec, -1);
      return;
    }
    self.complete(ec, connected);
  }
};

}  // namespace detail

template <class Token>
auto async_connect_tcp(runtime::context& ctx, const char* host, std::uint16_t port, Token&& token,
                       std::chrono::nanoseconds timeout = {}) {
  detail::connect_tcp_op op{ctx, {}, {}, timeout};
  op.parse_error = tcp_address::parse(host, port, op.addr);
  return boost::asio::async_compose<Token, void(std::error_code, int)>(std::move(op), token,
                                                                       ctx.get_executor());
}

}  // namespace pagewire::net
