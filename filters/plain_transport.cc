#include <cerrno>
#include <sys/socket.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/page_writer.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/fs/stats.h>

namespace pagewire::filters {

plain_transport::plain_transport(net::connection& conn, fs::page_pool& pool) noexcept
    : stream(conn.get_context()), conn_(conn), pool_(pool) {}

plain_transport::~plain_transport() = default;

void plain_transport::start_write(write_request& r) {
  queue_.push_back(&r);
  if (!sending_) send_next();
}

void plain_transport::send_next() {
  if (queue_.empty()) return;
  sending_ = true;
  write_request* r = queue_.front();
  // The transmit takes r->data and leaves in it the storage of its previous message.
  conn_.async_send(std::move(r->data), r->more ? net::send_flags::more : net::send_flags::none,
                   [this, r, ctx = &context(), alive = std::weak_ptr<char>(alive_)](
                       std::error_code ec, std::uint64_t n) {
                     if (alive.expired()) return r->finish(*ctx, ec, n);
                     queue_.erase(queue_.begin());
                     sending_ = false;
                     r->finish(context(), ec, n);
                     send_next();
                   });
}

void plain_transport::start_read(read_waiter& w) {
  conn_.async_receive(
      [this, &w, alive = std::weak_ptr<char>(alive_)](std::error_code ec, net::received got) {
        if (ec) return w.fn(&w, ec, {});
        if (got.empty()) return w.fn(&w, errc::eof, {});
        if (alive.expired())
          return w.fn(&w, std::make_error_code(std::errc::operation_canceled), {});
        page_writer out(pool_);
        std::size_t done = 0;
        while (done < got.size()) {
          auto space = out.reserve();
          if (space.empty()) return w.fn(&w, errc::pool_exhausted, {});
          const std::size_t n = std::min(space.size(), got.size() - done);
          fs::stats::copy(space.data(), got.data() + done, n, fs::copy_reason::other);
          out.commit(n);
          done += n;
        }
        got.release();
        w.fn(&w, {}, out.take());
      });
}

void plain_transport::start_read_raw(raw_read_waiter& w) {
  conn_.async_receive(
      [&w, alive = std::weak_ptr<char>(alive_)](std::error_code ec, net::received got) {
        if (ec) return w.fn(&w, ec, {});
        if (got.empty()) return w.fn(&w, errc::eof, {});
        if (alive.expired())
          return w.fn(&w, std::make_error_code(std::errc::operation_canceled), {});
        w.fn(&w, {}, std::move(got));
      });
}

void plain_transport::start_shutdown(done_waiter& w) {
  std::error_code ec;
  // ENOTCONN: the peer already reset the connection (e.g. a client that closed as soon as
  // it had Content-Length bytes); there is no sending side left to end, so not an error.
  if (::shutdown(conn_.fd(), SHUT_WR) != 0 && errno != ENOTCONN) {
    ec = std::error_code(errno, std::system_category());
  }
  context().post([&w, ec] { w.fn(&w, ec); });
}

void plain_transport::cancel() {
  context().cancel_fd(conn_.fd());
}

}  // namespace pagewire::filters
