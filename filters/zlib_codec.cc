#include <zlib.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/zlib_codec.h>

namespace pagewire::filters {
namespace {

// zlib counts in uInt; feed at most this much per call.
constexpr std::size_t kMaxChunk = 1u << 30;

class zlib_encoder final : public encoder {
 public:
  explicit zlib_encoder(coding kind) : kind_(kind) {}
  ~zlib_encoder() override {
    if (ready_) deflateEnd(&z_);
  }
  std::error_code init(const encoder_options& o) {
    const int level = o.level < 0 ? 6 : o.level;
    const int wb = o.window_bits == 0 ? 15 : o.window_bits;
    if (level > 9 || wb < 9 || wb > 15 || o.mem_level < 1 || o.mem_level > 9) {
      return std::make_error_code(std::errc::invalid_argument);
    }
    const int bits = kind_ == coding::gzip ? 16 + wb : wb;
    if (deflateInit2(&z_, level, Z_DEFLATED, bits, o.mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      return std::make_error_code(std::errc::not_enough_memory);
    }
    ready_ = true;
    return {};
  }

  std::error_code encode(std::span<const std::byte> in, flush f, page_writer& out,
                         std::size_t out_limit, std::size_t& consumed, bool& finished) override {
    const std::size_t take = in.size() < kMaxChunk ? in.size() : kMaxChunk;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    z_.avail_in = static_cast<uInt>(take);
    finished = false;
    const std::size_t start = out.pending();
    const int mode = f == flush::end ? Z_FINISH : Z_NO_FLUSH;
    std::error_code ec;
    while (out.pending() - start < out_limit) {
      auto space = out.reserve();
      if (space.empty()) {
        ec = errc::pool_exhausted;
        break;
      }
      z_.next_out = reinterpret_cast<Bytef*>(space.data());
      z_.avail_out = static_cast<uInt>(space.size());
      const int rc = deflate(&z_, mode);
      out.commit(space.size() - z_.avail_out);
      if (rc == Z_STREAM_END) {
        finished = true;
        deflateReset(&z_);
        break;
      }
      if (rc == Z_BUF_ERROR) break;  // no progress possible: needs input
      if (rc != Z_OK) {
        ec = errc::corrupt_data;
        break;
      }
      if (z_.avail_in == 0 && z_.avail_out != 0 && mode == Z_NO_FLUSH) break;
    }
    consumed = take - z_.avail_in;
    return ec;
  }
  std::error_code start_cut_member(page_writer& out) override {
    deflateReset(&z_);
    z_.next_in = nullptr;
    z_.avail_in = 0;
    for (;;) {
      auto space = out.reserve();
      if (space.empty()) return errc::pool_exhausted;
      z_.next_out = reinterpret_cast<Bytef*>(space.data());
      z_.avail_out = static_cast<uInt>(space.size());
      const int rc = deflate(&z_, Z_SYNC_FLUSH);  // the header, then an empty stored block
      out.commit(space.size() - z_.avail_out);
      if (rc != Z_OK && rc != Z_BUF_ERROR) return errc::corrupt_data;
      if (z_.avail_out != 0) return {};
    }
  }
  coding kind() const noexcept override { return kind_; }

 private:
  coding kind_;
  z_stream z_{};
  bool ready_ = false;
};

class zlib_decoder final : public decoder {
 public:
  explicit zlib_decoder(const decoder_options& o) : max_output_(o.max_output), kind_(o.kind) {}
  ~zlib_decoder() override {
    if (ready_) inflateEnd(&z_);
  }
  std::error_code init() {
    // gzip: 16 + 15 (gzip wrapper only); deflate: 15 (zlib wrapper).
    const int bits = kind_ == coding::gzip ? 16 + 15 : 15;
    if (inflateInit2(&z_, bits) != Z_OK) return std::make_error_code(std::errc::not_enough_memory);
    ready_ = true;
    return {};
  }

  std::error_code decode(std::span<const std::byte> in, page_writer& out, std::size_t out_limit,
                         std::size_t& consumed) override {
    const std::size_t take = in.size() < kMaxChunk ? in.size() : kMaxChunk;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
    z_.avail_in = static_cast<uInt>(take);
    const std::size_t start = out.pending();
    std::error_code ec;
    while (out.pending() - start < out_limit) {
      auto space = out.reserve();
      if (space.empty()) {
        ec = errc::pool_exhausted;
        break;
      }
      // Room for one byte past max_output, to tell that the content goes on beyond it.
      const std::uint64_t room = max_output_ - produced_;
      if (room < space.size()) space = space.first(room + 1);
      z_.next_out = reinterpret_cast<Bytef*>(space.data());
      z_.avail_out = static_cast<uInt>(space.size());
      const uInt in_before = z_.avail_in;
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const std::size_t produced = space.size() - z_.avail_out;
      out.commit(produced < room ? produced : room);
      produced_ += produced < room ? produced : room;
      if (produced > room) {
        ec = errc::output_limit;
        break;
      }
      if (rc == Z_STREAM_END) {
        boundary_ = true;
        inflateReset(&z_);
        if (z_.avail_in == 0) break;
        continue;  // another member follows
      }
      if (rc == Z_BUF_ERROR) break;  // needs input (or output space next call)
      if (rc != Z_OK) {
        ec = errc::corrupt_data;
        break;
      }
      if (z_.avail_in != in_before || produced) boundary_ = false;
      if (z_.avail_in == 0 && z_.avail_out != 0) break;
    }
    consumed = take - z_.avail_in;
    return ec;
  }
  bool at_boundary() const noexcept override { return boundary_; }
  std::uint64_t produced() const noexcept override { return produced_; }

 private:
  std::uint64_t max_output_;
  coding kind_;
  std::uint64_t produced_ = 0;
  z_stream z_{};
  bool ready_ = false;
  bool boundary_ = true;
};

}  // namespace

std::unique_ptr<encoder> make_zlib_encoder(const encoder_options& o, std::error_code& ec) {
  auto e = std::make_unique<zlib_encoder>(o.kind);
  if ((ec = e->init(o))) return nullptr;
  return e;
}

std::unique_ptr<decoder> make_zlib_decoder(const decoder_options& o, std::error_code& ec) {
  auto d = std::make_unique<zlib_decoder>(o);
  if ((ec = d->init())) return nullptr;
  return d;
}

}  // namespace pagewire::filters
