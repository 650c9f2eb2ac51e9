#include "apps/zcbench/path_send_zc.h"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>

#include <liburing.h>

namespace zcbench {
namespace {

class send_zc_sender final : public sender {
 public:
  send_zc_sender(const transfer& t, std::error_code& ec) : t_(t) {
    const int rc = ::io_uring_queue_init(8, &ring_, 0);
    if (rc < 0) {
      ec.assign(-rc, std::system_category());
      return;
    }
    ready_ = true;
    io_uring_probe* probe = ::io_uring_get_probe_ring(&ring_);
    const bool has_zc = probe != nullptr && ::io_uring_opcode_supported(probe, IORING_OP_SEND_ZC);
    if (probe != nullptr) ::io_uring_free_probe(probe);
    if (!has_zc) {
      ec = std::make_error_code(std::errc::not_supported);
      return;
    }
    // One fixed buffer over the whole window; plain SEND_ZC when registration is refused
    // (RLIMIT_MEMLOCK on old kernels).
    iovec whole{const_cast<std::byte*>(t.src.memory.data()), t.src.memory.size()};
    registered_ = ::io_uring_register_buffers(&ring_, &whole, 1) == 0;
  }
  ~send_zc_sender() override {
    if (!ready_) return;
    // Unregister first: that unpins (and un-accounts from RLIMIT_MEMLOCK) at once, while
    // ring teardown does it later, asynchronously, and the next path's registration could
    // then be refused with ENOMEM.
    if (registered_) ::io_uring_unregister_buffers(&ring_);
    ::io_uring_queue_exit(&ring_);
  }

  std::error_code send(send_counts& counts) override {
    const auto window = t_.src.memory;
    std::uint64_t offset = 0;
    while (offset < t_.src.total) {
      std::uint64_t left = std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      while (left > 0) {  // pieces: up to the window's end, continued after short sends
        const std::size_t at = static_cast<std::size_t>(offset % window.size());
        const std::size_t len = static_cast<std::size_t>(
            std::min<std::uint64_t>({left, window.size() - at, kMaxIoChunk}));
        const int flags = MSG_NOSIGNAL | (len < left ? MSG_MORE : 0);
        int sent = 0;
        if (auto ec = send_piece(window.data() + at, len, flags, sent, counts)) return ec;
        offset += static_cast<std::uint64_t>(sent);
        left -= static_cast<std::uint64_t>(sent);
        counts.bytes += static_cast<std::uint64_t>(sent);
      }
    }
    return {};
  }

 private:
  // One SEND_ZC: submit, reap its result, then (unless sent with MSG_MORE) every NOTIF
  // still due, this piece's and those of the MSG_MORE pieces before it: the buffers are
  // free only then. A MSG_MORE piece's NOTIF is not waited for on its own: the kernel holds
  // a corked tail shorter than the MSS back until the next send (or ~200 ms later), so its
  // pages are released only after the message's last, uncorked piece.
  std::error_code send_piece(const std::byte* buf, std::size_t len, int flags, int& sent,
                             send_counts& counts) {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
    if (registered_) {
      ::io_uring_prep_send_zc_fixed(sqe, t_.socket, buf, len, flags, 0, 0);
    } else {
      ::io_uring_prep_send_zc(sqe, t_.socket, buf, len, flags, 0);
    }
    int rc = ::io_uring_submit_and_wait(&ring_, 1);
    ++counts.syscalls;
    if (rc < 0) return {-rc, std::system_category()};
    const bool corked = (flags & MSG_MORE) != 0;
    bool result_seen = false;
    while (!result_seen || (!corked && notifs_due_ > 0)) {
      io_uring_cqe* cqe = nullptr;
      if (::io_uring_peek_cqe(&ring_, &cqe) != 0) {
        rc = ::io_uring_wait_cqe(&ring_, &cqe);  // enters the kernel: nothing was ready
        ++counts.syscalls;
        if (rc < 0) return {-rc, std::system_category()};
      }
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        --notifs_due_;
      } else {
        result_seen = true;
        sent = cqe->res;
        if (cqe->flags & IORING_CQE_F_MORE) ++notifs_due_;
      }
      ::io_uring_cqe_seen(&ring_, cqe);
    }
    if (sent == -EINTR || sent == -EAGAIN) sent = 0;  // requeue the same piece
    if (sent < 0) return {-sent, std::system_category()};
    return {};
  }

  transfer t_;
  io_uring ring_{};
  bool ready_ = false;
  bool registered_ = false;
  int notifs_due_ = 0;  // NOTIFs of sends whose result was reaped, not yet reaped themselves
};

std::unique_ptr<sender> make_send_zc(const transfer& t, std::error_code& ec) {
  ec.clear();
  auto s = std::make_unique<send_zc_sender>(t, ec);
  if (ec) return nullptr;
  return s;
}

}  // namespace

const path send_zc_path{
    .name = "send_zc",
    .raw = "send_zc",
    .summary =
        "io_uring SEND_ZC loop from one registered buffer, NOTIFs awaited per message (0 copied)",
    .reads = source_kind::memory,
    .make = make_send_zc,
};

}  // namespace zcbench
