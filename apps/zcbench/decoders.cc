#include "apps/zcbench/decoders.h"

#include <cerrno>
#include <memory>
#include <sys/socket.h>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>
#include <zstd.h>

namespace zcbench {
namespace {

constexpr std::size_t kBuffer = 256 * 1024;

std::error_code protocol_error() {
  return std::make_error_code(std::errc::protocol_error);
}

void publish(std::atomic<std::uint64_t>* progress, std::uint64_t bytes) {
  if (progress != nullptr) progress->store(bytes, std::memory_order_relaxed);
}

// One recv() into `buf`: > 0 bytes, 0 at EOF, -1 with `ec` set.
ssize_t recv_some(int socket, std::vector<unsigned char>& buf, recv_counts& counts,
                  std::error_code& ec) {
  for (;;) {
    const ssize_t n = ::recv(socket, buf.data(), buf.size(), 0);
    ++counts.syscalls;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) ec.assign(errno, std::system_category());
    if (n > 0) counts.wire_bytes += static_cast<std::uint64_t>(n);
    return n;
  }
}

// gzip members (zlib's inflate with gzip framing), back to back.
std::error_code receive_gzip(int socket, recv_counts& counts,
                             std::atomic<std::uint64_t>* progress) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return std::make_error_code(std::errc::not_enough_memory);
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard(&z, inflateEnd);
  std::vector<unsigned char> in(kBuffer), out(kBuffer);
  bool in_member = false;
  std::error_code ec;
  for (;;) {
    const ssize_t n = recv_some(socket, in, counts, ec);
    if (n < 0) return ec;
    if (n == 0) return in_member ? protocol_error() : std::error_code();
    z.next_in = in.data();
    z.avail_in = static_cast<uInt>(n);
    while (z.avail_in > 0) {
      in_member = true;
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return protocol_error();
      counts.bytes += out.size() - z.avail_out;
      if (rc == Z_STREAM_END) {
        in_member = false;
        inflateReset(&z);
      } else if (rc == Z_BUF_ERROR && z.avail_out != 0) {
        return protocol_error();  // no progress with input and room left
      }
    }
    // Drain output still inside zlib (input all taken, output was full).
    for (;;) {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_NO_FLUSH);
      counts.bytes += out.size() - z.avail_out;
      if (rc == Z_STREAM_END) {
        in_member = false;
        inflateReset(&z);
      }
      if (z.avail_out != 0 || (rc != Z_OK && rc != Z_STREAM_END)) break;
    }
    publish(progress, counts.bytes);
  }
}

// zstd frames, back to back.
std::error_code receive_zstd(int socket, recv_counts& counts,
                             std::atomic<std::uint64_t>* progress) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) return std::make_error_code(std::errc::not_enough_memory);
  std::vector<unsigned char> in(kBuffer), out(kBuffer);
  std::size_t hint = 0;  // 0: on a frame boundary
  std::error_code ec;
  for (;;) {
    const ssize_t n = recv_some(socket, in, counts, ec);
    if (n < 0) return ec;
    if (n == 0) return hint != 0 ? protocol_error() : std::error_code();
    ZSTD_inBuffer ib{in.data(), static_cast<std::size_t>(n), 0};
    bool full = true;
    while (ib.pos < ib.size || full) {
      ZSTD_outBuffer ob{out.data(), out.size(), 0};
      const std::size_t in_before = ib.pos;
      const std::size_t rc = ZSTD_decompressStream(d.get(), &ob, &ib);
      if (ZSTD_isError(rc)) return protocol_error();
      // A call that moved nothing (input gone, frame done) says nothing about the boundary.
      if (ib.pos != in_before || ob.pos != 0) hint = rc;
      counts.bytes += ob.pos;
      full = ob.pos == ob.size;
    }
    publish(progress, counts.bytes);
  }
}

// Counts the socket BIO's reads (system calls) and the bytes they returned (wire bytes);
// the callback argument is the recv_counts.
long count_reads(BIO* b, int oper, const char*, size_t, int, long, int ret, size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
    auto* rc = reinterpret_cast<recv_counts*>(BIO_get_callback_arg(b));
    ++rc->syscalls;
    if (ret > 0 && processed != nullptr) rc->wire_bytes += *processed;
  }
  return ret;
}

struct tls_client {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  ~tls_client() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
};

std::error_code receive_tls(int socket, recv_counts& counts, std::atomic<std::uint64_t>* progress) {
  tls_client c;
  c.ctx = SSL_CTX_new(TLS_client_method());
  if (c.ctx == nullptr) return std::make_error_code(std::errc::not_enough_memory);
  SSL_CTX_set_verify(c.ctx, SSL_VERIFY_NONE, nullptr);
  c.ssl = SSL_new(c.ctx);
  BIO* bio = c.ssl != nullptr ? BIO_new_socket(socket, BIO_NOCLOSE) : nullptr;
  if (bio == nullptr) return std::make_error_code(std::errc::not_enough_memory);
  BIO_set_callback_ex(bio, count_reads);
  BIO_set_callback_arg(bio, reinterpret_cast<char*>(&counts));
  SSL_set_bio(c.ssl, bio, bio);
  ERR_clear_error();
  if (SSL_connect(c.ssl) != 1) return protocol_error();
  std::vector<unsigned char> buf(kBuffer);
  for (;;) {
    const int n = SSL_read(c.ssl, buf.data(), static_cast<int>(buf.size()));
    if (n > 0) {
      counts.bytes += static_cast<std::uint64_t>(n);
      publish(progress, counts.bytes);
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    if (err == SSL_ERROR_ZERO_RETURN) return {};  // close_notify: the clean end
    if (err == SSL_ERROR_SYSCALL && errno != 0) return {errno, std::system_category()};
    return protocol_error();  // EOF without close_notify, or a TLS error
  }
}

}  // namespace

std::error_code receive_decoded(int socket, stream_coding coding, recv_counts& counts,
                                std::atomic<std::uint64_t>* progress) {
  switch (coding) {
    case stream_coding::tls:
      return receive_tls(socket, counts, progress);
    case stream_coding::gzip:
      return receive_gzip(socket, counts, progress);
    case stream_coding::zstd:
      return receive_zstd(socket, counts, progress);
    case stream_coding::none:
      break;
  }
  return std::make_error_code(std::errc::invalid_argument);
}

}  // namespace zcbench
