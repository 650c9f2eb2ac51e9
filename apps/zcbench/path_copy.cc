#include "apps/zcbench/path_copy.h"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace zcbench {
namespace {

class copy_sender final : public sender {
 public:
  explicit copy_sender(const transfer& t) : t_(t), buffer_(std::min(t.message_size, kMaxIoChunk)) {}

  std::error_code send(send_counts& counts) override {
    std::uint64_t offset = 0;
    while (offset < t_.src.total) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(buffer_.size(), t_.src.total - offset));
      if (auto ec = fill(offset, want, counts)) return ec;
      if (auto ec = drain(want, counts)) return ec;
      offset += want;
    }
    return {};
  }

 private:
  // Reads `want` bytes at `offset` into the buffer, continuing after short reads.
  std::error_code fill(std::uint64_t offset, std::size_t want, send_counts& counts) {
    std::size_t got = 0;
    while (got < want) {
      const ssize_t n = ::pread(t_.src.file_fd, buffer_.data() + got, want - got,
                                static_cast<off_t>(offset + got));
      ++counts.syscalls;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {errno, std::system_category()};
      if (n == 0) return std::make_error_code(std::errc::io_error);  // file shorter than total
      got += static_cast<std::size_t>(n);
      counts.bytes_copied += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  // Sends the first `want` bytes of the buffer, continuing after short sends.
  std::error_code drain(std::size_t want, send_counts& counts) {
    std::size_t put = 0;
    while (put < want) {
      const ssize_t n = ::send(t_.socket, buffer_.data() + put, want - put, MSG_NOSIGNAL);
      ++counts.syscalls;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {errno, std::system_category()};
      put += static_cast<std::size_t>(n);
      counts.bytes += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  transfer t_;
  std::vector<std::byte> buffer_;
};

std::unique_ptr<sender> make_copy(const transfer& t, std::error_code& ec) {
  ec.clear();
  return std::make_unique<copy_sender>(t);
}

}  // namespace

const path copy_path{
    .name = "copy",
    .raw = "copy",
    .summary = "pread() a message into a buffer, send() it (baseline; 1 byte copied per byte)",
    .reads = source_kind::file,
    .make = make_copy,
};

}  // namespace zcbench
