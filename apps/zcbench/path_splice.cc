#include "apps/zcbench/path_splice.h"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>

#include "apps/zcbench/pipe.h"

namespace zcbench {
namespace {

class splice_sender final : public sender {
 public:
  splice_sender(const transfer& t, pipe_pair pipe) : t_(t), pipe_(std::move(pipe)) {}

  std::error_code send(send_counts& counts) override {
    loff_t offset = 0;  // advanced by splice itself
    const auto total = static_cast<loff_t>(t_.src.total);
    while (offset < total) {
      std::uint64_t message_left =
          std::min<std::uint64_t>(t_.message_size, static_cast<std::uint64_t>(total - offset));
      while (message_left > 0) {
        const auto chunk =
            static_cast<std::size_t>(std::min<std::uint64_t>(message_left, pipe_.capacity()));
        const ssize_t in =
            ::splice(t_.src.file_fd, &offset, pipe_.write_end(), nullptr, chunk, SPLICE_F_MOVE);
        ++counts.syscalls;
        if (in < 0 && errno == EINTR) continue;
        if (in < 0) return {errno, std::system_category()};
        if (in == 0) return std::make_error_code(std::errc::io_error);  // file shorter than total
        message_left -= static_cast<std::uint64_t>(in);
        if (auto ec = drain(static_cast<std::size_t>(in), message_left > 0, counts)) return ec;
      }
    }
    return {};
  }

 private:
  // Moves `n` bytes from the pipe to the socket, continuing after short splices.
  std::error_code drain(std::size_t n, bool more_follows, send_counts& counts) {
    while (n > 0) {
      const unsigned flags = SPLICE_F_MOVE | (more_follows ? SPLICE_F_MORE : 0u);
      const ssize_t out = ::splice(pipe_.read_end(), nullptr, t_.socket, nullptr, n, flags);
      ++counts.syscalls;
      if (out < 0 && errno == EINTR) continue;
      if (out < 0) return {errno, std::system_category()};
      n -= static_cast<std::size_t>(out);
      counts.bytes += static_cast<std::uint64_t>(out);
    }
    return {};
  }

  transfer t_;
  pipe_pair pipe_;
};

std::unique_ptr<sender> make_splice(const transfer& t, std::error_code& ec) {
  pipe_pair pipe = pipe_pair::open(t.message_size, ec);
  if (ec) return nullptr;
  return std::make_unique<splice_sender>(t, std::move(pipe));
}

}  // namespace

const path splice_path{
    .name = "splice",
    .raw = "splice",
    .summary = "file -> pipe -> socket splice() loop, pipe sized to the message (0 bytes copied)",
    .reads = source_kind::file,
    .make = make_splice,
};

}  // namespace zcbench
