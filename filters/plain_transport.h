#pragma once

/// plain_transport: the bottom of a stack on a TCP socket, over net::connection. Writes go
/// to net's transmit whole, file ranges and all (splice/sendfile, MSG_MORE on all but the
/// last segment, and on that one too when the write says write_flags::more: the message goes
/// on in the next write, which fills the segment its tail left open), so with no filter above
/// a file body never enters user space. Writes queue in order (a layer's control records and
/// the application's data share the socket); each completes its write_request with the bytes
/// the socket accepted. Reads hand up what the connection received; the bytes leave the
/// receive ring for pool pages so they can live in a chain (one copy, counted in fs::stats as
/// copy_reason::other). shutdown() half-closes (SHUT_WR: the peer reads EOF); closing the
/// connection stays its owner's business (net::connection::async_close). cancel() cancels
/// every operation on the socket.
///
/// Ownership: the connection and pool outlive the transport. Threading: the connection's
/// loop thread. Errors: system_category from net; end of stream is filters::errc::eof.

#include <memory>
#include <string>
#include <vector>

#include <pagewire/filters/stream.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/recv_buffer_ring.h>

namespace pagewire::filters {

/// Receives one raw receive (see plain_transport::start_read_raw): the bytes as net handed
/// them up (a ring buffer or heap block view, not copied), errc::eof at the end. `fn` runs
/// once, on the loop thread.
struct raw_read_waiter {
  void (*fn)(raw_read_waiter* self, std::error_code ec, net::received data) = nullptr;
};

class plain_transport final : public stream {
 public:
  plain_transport(net::connection& conn, fs::page_pool& pool) noexcept;
  ~plain_transport() override;

  void start_write(write_request& r) override;
  void start_read(read_waiter& w) override;
  void start_shutdown(done_waiter& w) override;
  void cancel() override;
  std::string describe() const override { return "plain"; }

  net::connection& connection() noexcept { return conn_; }

  /// A read without the copy into pool pages, for a layer that consumes bytes at once and
  /// can hold a net::received meanwhile (tls_layer feeds it to OpenSSL's BIO). Same rules as
  /// start_read; the waiter releases the view (returning the ring buffer) when done.
  void start_read_raw(raw_read_waiter& w);

 private:
  void send_next();

  net::connection& conn_;
  fs::page_pool& pool_;
  // Writes in order: a layer's write and its own control records, a few at most (a vector,
  // which keeps its storage, where a deque would allocate a block every so often).
  std::vector<write_request*> queue_;
  bool sending_ = false;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace pagewire::filters
