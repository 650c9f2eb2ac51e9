#include <climits>

#include <pagewire/net/policy.h>

namespace pagewire::net {

std::error_code options::validate() const noexcept {
  const auto bad = std::make_error_code(std::errc::invalid_argument);
  if (max_iovecs == 0 || max_iovecs > IOV_MAX) return bad;
  if (pipe_size < 4096 || pipe_size > (std::size_t{1} << 30)) return bad;
  if (splice_chunk == 0 || splice_chunk > pipe_size || splice_chunk > kMaxIoChunk) return bad;
  if (residency_window < 4096 || transfer_quantum < 4096) return bad;
  if (file_range_path != file_path::automatic && file_range_path != file_path::splice &&
      file_range_path != file_path::sendfile) {
    return bad;
  }
  if (notsent_lowat > static_cast<std::size_t>(INT_MAX)) return bad;
  if (recv_buffers == 0 || recv_buffers > 32768 || (recv_buffers & (recv_buffers - 1)) != 0) {
    return bad;
  }
  if (recv_buffer_size == 0 || recv_buffer_size > (std::size_t{1} << 24)) return bad;
  if (accept_backoff.count() <= 0) return bad;
  if (header_timeout.count() < 0 || idle_timeout.count() < 0 || send_timeout.count() < 0 ||
      linger_timeout.count() < 0 || linger_time.count() < 0) {
    return bad;
  }
  return {};
}

}  // namespace pagewire::net
