#include "apps/zcbench/receivers.h"

#include <cerrno>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "apps/zcbench/pipe.h"

namespace zcbench {
namespace {

constexpr std::size_t kRecvBuffer = 256 * 1024;
constexpr std::size_t kRecvPipe = 1024 * 1024;

void publish(std::atomic<std::uint64_t>* progress, std::uint64_t bytes) {
  if (progress != nullptr) progress->store(bytes, std::memory_order_relaxed);
}

std::error_code receive_copy(int socket, recv_counts& counts,
                             std::atomic<std::uint64_t>* progress) {
  std::vector<std::byte> buffer(kRecvBuffer);
  for (;;) {
    const ssize_t n = ::recv(socket, buffer.data(), buffer.size(), 0);
    ++counts.syscalls;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {errno, std::system_category()};
    if (n == 0) return {};
    counts.bytes += static_cast<std::uint64_t>(n);
    publish(progress, counts.bytes);
  }
}

// Empties `n` bytes of the pipe into /dev/null.
std::error_code discard(const pipe_pair& pipe, int null_fd, std::size_t n, recv_counts& counts) {
  while (n > 0) {
    const ssize_t out = ::splice(pipe.read_end(), nullptr, null_fd, nullptr, n, SPLICE_F_MOVE);
    ++counts.syscalls;
    if (out < 0 && errno == EINTR) continue;
    if (out < 0) return {errno, std::system_category()};
    n -= static_cast<std::size_t>(out);
  }
  return {};
}

std::error_code receive_splice(int socket, recv_counts& counts,
                               std::atomic<std::uint64_t>* progress) {
  std::error_code ec;
  const pipe_pair pipe = pipe_pair::open(kRecvPipe, ec);
  if (ec) return ec;
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null_fd < 0) return {errno, std::system_category()};
  for (;;) {
    const ssize_t in =
        ::splice(socket, nullptr, pipe.write_end(), nullptr, pipe.capacity(), SPLICE_F_MOVE);
    ++counts.syscalls;
    if (in < 0 && errno == EINTR) continue;
    if (in < 0) {
      ec.assign(errno, std::system_category());
      break;
    }
    if (in == 0) break;
    counts.bytes += static_cast<std::uint64_t>(in);
    publish(progress, counts.bytes);
    if ((ec = discard(pipe, null_fd, static_cast<std::size_t>(in), counts))) break;
  }
  ::close(null_fd);
  return ec;
}

}  // namespace

std::string_view to_string(recv_mode mode) {
  return mode == recv_mode::copy ? "copy" : "splice";
}

std::optional<recv_mode> parse_recv_mode(std::string_view text) {
  if (text == "copy") return recv_mode::copy;
  if (text == "splice") return recv_mode::splice;
  return std::nullopt;
}

std::error_code receive_all(int socket, recv_mode mode, recv_counts& counts,
                            std::atomic<std::uint64_t>* progress) {
  const auto ec = mode == recv_mode::copy ? receive_copy(socket, counts, progress)
                                          : receive_splice(socket, counts, progress);
  counts.wire_bytes = counts.bytes;
  return ec;
}

}  // namespace zcbench
