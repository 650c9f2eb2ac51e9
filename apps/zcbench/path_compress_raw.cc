#include "apps/zcbench/path_compress_raw.h"

#include <algorithm>
#include <cerrno>
#include <sys/socket.h>
#include <vector>

#include <zlib.h>
#include <zstd.h>

namespace zcbench {
namespace {

constexpr std::size_t kOut = 256 * 1024;

// The codec under test: feeds input, reports output produced into `out`.
class codec {
 public:
  virtual ~codec() = default;
  /// Compresses in[0, n) into out[*produced ...]; `last` ends the stream. Returns false on a
  /// codec error. Sets `consumed` and advances `produced`; `done` when `last` finished.
  virtual bool step(const std::byte* in, std::size_t n, bool last, std::byte* out, std::size_t room,
                    std::size_t& consumed, std::size_t& produced, bool& done) = 0;
};

class gzip_codec final : public codec {
 public:
  explicit gzip_codec(int level) {
    ok_ = deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~gzip_codec() override {
    if (ok_) deflateEnd(&z_);
  }
  bool ok() const { return ok_; }
  bool step(const std::byte* in, std::size_t n, bool last, std::byte* out, std::size_t room,
            std::size_t& consumed, std::size_t& produced, bool& done) override {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in));
    z_.avail_in = static_cast<uInt>(std::min<std::size_t>(n, 1u << 30));
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = static_cast<uInt>(room);
    const int rc = deflate(&z_, last ? Z_FINISH : Z_NO_FLUSH);
    consumed = static_cast<std::size_t>(reinterpret_cast<std::byte*>(z_.next_in) - in);
    produced += room - z_.avail_out;
    done = rc == Z_STREAM_END;
    return rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR;
  }

 private:
  z_stream z_{};
  bool ok_ = false;
};

class zstd_codec final : public codec {
 public:
  // The frame pagewire's encoder writes (filters/zstd_codec.cc), which is also the zstd
  // CLI's default: a content checksum (XXH64) at the end, so both loops do the same work.
  explicit zstd_codec(int level) : c_(ZSTD_createCCtx()) {
    if (c_ != nullptr) {
      ZSTD_CCtx_setParameter(c_, ZSTD_c_compressionLevel, level);
      ZSTD_CCtx_setParameter(c_, ZSTD_c_checksumFlag, 1);
    }
  }
  ~zstd_codec() override { ZSTD_freeCCtx(c_); }
  bool ok() const { return c_ != nullptr; }
  bool step(const std::byte* in, std::size_t n, bool last, std::byte* out, std::size_t room,
            std::size_t& consumed, std::size_t& produced, bool& done) override {
    ZSTD_inBuffer ib{in, n, 0};
    ZSTD_outBuffer ob{out, room, 0};
    const std::size_t rc = ZSTD_compressStream2(c_, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
    consumed = ib.pos;
    produced += ob.pos;
    done = last && rc == 0;
    return !ZSTD_isError(rc);
  }

 private:
  ZSTD_CCtx* c_;
};

class compress_sender final : public sender {
 public:
  compress_sender(const transfer& t, std::unique_ptr<codec> c) : t_(t), codec_(std::move(c)) {}

  std::error_code send(send_counts& counts) override {
    const auto window = t_.src.memory;
    std::uint64_t offset = 0;
    while (offset < t_.src.total) {
      const std::uint64_t end =
          offset + std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      const bool last_message = end == t_.src.total;
      bool done = false;
      while (offset < end || (last_message && !done)) {
        const std::size_t at = static_cast<std::size_t>(offset % window.size());
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(end - offset, window.size() - at));
        std::size_t consumed = 0;
        if (!codec_->step(window.data() + at, n, last_message && offset + n == end,
                          out_.data() + used_, out_.size() - used_, consumed, used_, done)) {
          return std::make_error_code(std::errc::protocol_error);
        }
        offset += consumed;
        counts.bytes += consumed;
        if (used_ == out_.size()) {
          if (auto ec = flush(counts)) return ec;
        }
      }
      if (auto ec = flush(counts)) return ec;  // what this message produced goes now
    }
    return {};
  }

 private:
  std::error_code flush(send_counts& counts) {
    std::size_t put = 0;
    while (put < used_) {
      const ssize_t n = ::send(t_.socket, out_.data() + put, used_ - put, MSG_NOSIGNAL);
      ++counts.syscalls;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return {errno, std::system_category()};
      put += static_cast<std::size_t>(n);
    }
    used_ = 0;
    return {};
  }

  transfer t_;
  std::unique_ptr<codec> codec_;
  std::vector<std::byte> out_ = std::vector<std::byte>(kOut);
  std::size_t used_ = 0;
};

template <bool Zstd, int Level>
std::unique_ptr<sender> make(const transfer& t, std::error_code& ec) {
  ec.clear();
  if constexpr (Zstd) {
    auto c = std::make_unique<zstd_codec>(Level);
    if (c->ok()) return std::make_unique<compress_sender>(t, std::move(c));
  } else {
    auto c = std::make_unique<gzip_codec>(Level);
    if (c->ok()) return std::make_unique<compress_sender>(t, std::move(c));
  }
  ec = std::make_error_code(std::errc::not_enough_memory);
  return nullptr;
}

}  // namespace

const path gzip_raw1_path{
    .name = "gzip_raw1",
    .raw = "gzip_raw1",
    .summary = "zlib deflate (gzip, level 1) + send() loop, memory window (raw gzip)",
    .reads = source_kind::memory,
    .decode = stream_coding::gzip,
    .compresses = true,
    .make = make<false, 1>,
};

const path gzip_raw6_path{
    .name = "gzip_raw6",
    .raw = "gzip_raw6",
    .summary = "zlib deflate (gzip, level 6) + send() loop, memory window (raw gzip)",
    .reads = source_kind::memory,
    .decode = stream_coding::gzip,
    .compresses = true,
    .make = make<false, 6>,
};

const path zstd_raw1_path{
    .name = "zstd_raw1",
    .raw = "zstd_raw1",
    .summary = "ZSTD_compressStream2 (level 1, checksum) + send() loop, memory window (raw zstd)",
    .reads = source_kind::memory,
    .decode = stream_coding::zstd,
    .compresses = true,
    .make = make<true, 1>,
};

const path zstd_raw3_path{
    .name = "zstd_raw3",
    .raw = "zstd_raw3",
    .summary = "ZSTD_compressStream2 (level 3, checksum) + send() loop, memory window (raw zstd)",
    .reads = source_kind::memory,
    .decode = stream_coding::zstd,
    .compresses = true,
    .make = make<true, 3>,
};

}  // namespace zcbench
