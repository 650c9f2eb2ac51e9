#include "apps/zcbench/path_sendmsg.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <sys/socket.h>
#include <sys/uio.h>
#include <vector>

namespace zcbench {
namespace {

constexpr std::size_t kPiece = 4096;

class sendmsg_sender final : public sender {
 public:
  explicit sendmsg_sender(const transfer& t) : t_(t), iov_(IOV_MAX) {}

  std::error_code send(send_counts& counts) override {
    std::uint64_t offset = 0;
    while (offset < t_.src.total) {
      const std::uint64_t n = std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      if (auto ec = send_message(offset, n, counts)) return ec;
      offset += n;
    }
    return {};
  }

 private:
  // Fills iov_ with the stream's bytes [offset, offset + n) in page-bounded pieces; returns
  // the count and the bytes they hold.
  std::size_t gather(std::uint64_t offset, std::uint64_t n, std::uint64_t& bytes) {
    const auto window = t_.src.memory;
    std::size_t k = 0;
    bytes = 0;
    while (n > 0 && k < iov_.size()) {
      const std::size_t at = static_cast<std::size_t>(offset % window.size());
      const std::size_t take = static_cast<std::size_t>(
          std::min<std::uint64_t>({n, kPiece - at % kPiece, window.size() - at}));
      iov_[k].iov_base = const_cast<std::byte*>(window.data() + at);
      iov_[k].iov_len = take;
      ++k;
      offset += take;
      n -= take;
      bytes += take;
    }
    return k;
  }

  std::error_code send_message(std::uint64_t offset, std::uint64_t n, send_counts& counts) {
    while (n > 0) {
      std::uint64_t bytes = 0;
      const std::size_t k = gather(offset, n, bytes);
      msghdr msg{};
      msg.msg_iov = iov_.data();
      msg.msg_iovlen = k;
      const int flags = MSG_NOSIGNAL | (bytes < n ? MSG_MORE : 0);
      const ssize_t r = ::sendmsg(t_.socket, &msg, flags);
      ++counts.syscalls;
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return {errno, std::system_category()};
      offset += static_cast<std::uint64_t>(r);
      n -= static_cast<std::uint64_t>(r);
      counts.bytes += static_cast<std::uint64_t>(r);
    }
    return {};
  }

  transfer t_;
  std::vector<iovec> iov_;
};

std::unique_ptr<sender> make_sendmsg(const transfer& t, std::error_code& ec) {
  ec.clear();
  return std::make_unique<sendmsg_sender>(t);
}

}  // namespace

const path sendmsg_path{
    .name = "sendmsg",
    .raw = "sendmsg",
    .summary = "sendmsg() loop of 4 KiB memory pieces, up to IOV_MAX per call (0 bytes copied)",
    .reads = source_kind::memory,
    .make = make_sendmsg,
};

}  // namespace zcbench
