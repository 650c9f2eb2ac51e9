#include "apps/zcbench/path_sendfile.h"

#include <algorithm>
#include <cerrno>
#include <sys/sendfile.h>
#include <sys/types.h>

namespace zcbench {
namespace {

static_assert(sizeof(off_t) == 8, "zcbench needs 64-bit file offsets");

class sendfile_sender final : public sender {
 public:
  explicit sendfile_sender(const transfer& t) : t_(t) {}

  std::error_code send(send_counts& counts) override {
    off_t offset = 0;  // advanced by sendfile itself
    const auto total = static_cast<off_t>(t_.src.total);
    while (offset < total) {
      std::uint64_t message_left =
          std::min<std::uint64_t>(t_.message_size, static_cast<std::uint64_t>(total - offset));
      while (message_left > 0) {
        const auto chunk =
            static_cast<std::size_t>(std::min<std::uint64_t>(message_left, kMaxIoChunk));
        const ssize_t n = ::sendfile(t_.socket, t_.src.file_fd, &offset, chunk);
        ++counts.syscalls;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return {errno, std::system_category()};
        if (n == 0) return std::make_error_code(std::errc::io_error);  // file shorter than total
        message_left -= static_cast<std::uint64_t>(n);
        counts.bytes += static_cast<std::uint64_t>(n);
      }
    }
    return {};
  }

 private:
  transfer t_;
};

std::unique_ptr<sender> make_sendfile(const transfer& t, std::error_code& ec) {
  ec.clear();
  return std::make_unique<sendfile_sender>(t);
}

}  // namespace

const path sendfile_path{
    .name = "sendfile",
    .raw = "sendfile",
    .summary = "sendfile() loop, one call per message (0 bytes copied)",
    .reads = source_kind::file,
    .make = make_sendfile,
};

}  // namespace zcbench
