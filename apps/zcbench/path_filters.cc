#include "apps/zcbench/path_filters.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <unistd.h>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/connection.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

#include "apps/zcbench/page_window.h"
#include "apps/zcbench/tls_credentials.h"

namespace zcbench {
namespace {

namespace asio = boost::asio;
namespace pw = pagewire;

// Reads after our shutdown until the peer closes: bounded, the receiver closes at its end.
constexpr int kMaxDrainReads = 1 << 20;

struct stack_spec {
  const char* suite = nullptr;  // TLS 1.3 suite, or null
  pw::filters::coding coding = pw::filters::coding::identity;
  int level = 0;
};

class filter_sender final : public sender {
 public:
  filter_sender(const transfer& t, const stack_spec& spec, std::error_code& ec)
      : t_(t), spec_(spec), opts_(net_options()), ctx_(context_options()), pipes_(opts_) {
    pw::fs::page_pool_options po;
    po.max_bytes = std::size_t{1} << 30;
    pool_ = std::make_unique<pw::fs::page_pool>(po);
    if ((ec = window_.fill(*pool_, t_.src.memory))) return;  // once, not timed
    const int fd = ::dup(t.socket);  // the connection owns and closes its descriptor
    if (fd < 0) {
      ec.assign(errno, std::system_category());
      return;
    }
    conn_ = std::make_unique<pw::net::connection>(ctx_, fd, opts_, pipes_, nullptr);
    top_ = std::make_unique<pw::filters::plain_transport>(*conn_, *pool_);
    if (spec.suite != nullptr) {
      pw::filters::tls_options o;
      o.cert_file = tls_credentials_files().cert_file;
      o.key_file = tls_credentials_files().key_file;
      o.ciphersuites = spec.suite;
      auto tls = pw::filters::tls_context::create(o, ec);
      if (ec) return;
      top_ = std::make_unique<pw::filters::tls_layer>(
          std::move(top_), std::move(tls), pw::filters::tls_layer_options{}, *pool_, nullptr, ec);
    } else {
      pw::filters::content_filter_options o;
      o.encode = pw::filters::encoder_options{spec.coding, spec.level};
      top_ = std::make_unique<pw::filters::content_filter>(std::move(top_), o, *pool_, nullptr, ec);
    }
  }

  ~filter_sender() override {
    top_.reset();  // layers before the connection they sit on
    conn_.reset();
  }

  std::error_code send(send_counts& counts) override {
    const auto enters = ctx_.stats().snapshot().enters;
    const auto copied = pw::fs::stats::copied_bytes();
    std::error_code ec = std::make_error_code(std::errc::io_error);  // until the loop ends
    asio::co_spawn(ctx_.get_executor(), run(counts, ec), asio::detached);
    ctx_.run();
    counts.syscalls = ctx_.stats().snapshot().enters - enters;
    counts.bytes_copied = pw::fs::stats::copied_bytes() - copied;
    return ec;
  }

 private:
  static pw::runtime::context_options context_options() {
    pw::runtime::context_options o;
    o.backend = pw::runtime::backend_kind::io_uring;
    return o;
  }
  static pw::net::options net_options() {
    pw::net::options o;
    o.header_timeout = o.idle_timeout = std::chrono::milliseconds(0);
    return o;
  }

  // Writes every message, shuts the stack down, waits for the peer's close, closes.
  asio::awaitable<void> run(send_counts& counts, std::error_code& result) {
    std::error_code ec;
    const bool compress = spec_.suite == nullptr;
    for (std::uint64_t offset = 0; offset < t_.src.total && !ec;) {
      const std::uint64_t n = std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      const bool last = offset + n == t_.src.total;
      const auto flags = compress && !last ? pw::filters::write_flags::more
                                           : pw::filters::write_flags::end_of_message;
      pw::fs::chain message;
      window_.share(offset, n, message);
      auto [e, sent] =
          co_await top_->write(std::move(message), flags, asio::as_tuple(asio::use_awaitable));
      ec = e;
      counts.bytes += sent;
      offset += n;
    }
    if (!ec) {
      auto [e] = co_await top_->shutdown(asio::as_tuple(asio::use_awaitable));
      ec = e;
    }
    for (int i = 0; !ec && i < kMaxDrainReads; ++i) {
      auto [e, data] = co_await top_->read(asio::as_tuple(asio::use_awaitable));
      if (e) break;  // the peer's close (EOF, or TLS truncation: the client sends no close_notify)
    }
    co_await conn_->async_close(asio::as_tuple(asio::use_awaitable));
    result = ec;
  }

  transfer t_;
  stack_spec spec_;
  pw::net::options opts_;  // the connection and pipe pool keep a reference
  pw::runtime::context ctx_;
  pw::net::pipe_pool pipes_;
  std::unique_ptr<pw::fs::page_pool> pool_;
  page_window window_;
  std::unique_ptr<pw::net::connection> conn_;
  std::unique_ptr<pw::filters::stream> top_;
};

template <const stack_spec& Spec>
std::unique_ptr<sender> make(const transfer& t, std::error_code& ec) {
  ec.clear();
  try {
    auto s = std::make_unique<filter_sender>(t, Spec, ec);
    if (ec) return nullptr;
    return s;
  } catch (const std::system_error& e) {  // io_uring refused (EPERM, ENOSYS)
    ec = e.code();
    return nullptr;
  }
}

using pw::filters::coding;
constexpr stack_spec kTlsAes128{.suite = "TLS_AES_128_GCM_SHA256"};
constexpr stack_spec kTlsAes256{.suite = "TLS_AES_256_GCM_SHA384"};
constexpr stack_spec kTlsChacha{.suite = "TLS_CHACHA20_POLY1305_SHA256"};
constexpr stack_spec kGzip1{.coding = coding::gzip, .level = 1};
constexpr stack_spec kGzip6{.coding = coding::gzip, .level = 6};
constexpr stack_spec kZstd1{.coding = coding::zstd, .level = 1};
constexpr stack_spec kZstd3{.coding = coding::zstd, .level = 3};

}  // namespace

const path pw_tls_aes128gcm_path{
    .name = "pw_tls_aes128gcm",
    .raw = "tls_raw_aes128gcm",
    .summary = "pagewire tls_layer > plain_transport, TLS 1.3 AES-128-GCM, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kTlsAes128>,
};

const path pw_tls_aes256gcm_path{
    .name = "pw_tls_aes256gcm",
    .raw = "tls_raw_aes256gcm",
    .summary = "pagewire tls_layer > plain_transport, TLS 1.3 AES-256-GCM, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kTlsAes256>,
};

const path pw_tls_chacha20_path{
    .name = "pw_tls_chacha20",
    .raw = "tls_raw_chacha20",
    .summary = "pagewire tls_layer > plain_transport, TLS 1.3 ChaCha20-Poly1305, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::tls,
    .make = make<kTlsChacha>,
};

const path pw_gzip1_path{
    .name = "pw_gzip1",
    .raw = "gzip_raw1",
    .summary = "pagewire content_filter (gzip, level 1) > plain_transport, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::gzip,
    .compresses = true,
    .make = make<kGzip1>,
};

const path pw_gzip6_path{
    .name = "pw_gzip6",
    .raw = "gzip_raw6",
    .summary = "pagewire content_filter (gzip, level 6) > plain_transport, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::gzip,
    .compresses = true,
    .make = make<kGzip6>,
};

const path pw_zstd1_path{
    .name = "pw_zstd1",
    .raw = "zstd_raw1",
    .summary = "pagewire content_filter (zstd, level 1) > plain_transport, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::zstd,
    .compresses = true,
    .make = make<kZstd1>,
};

const path pw_zstd3_path{
    .name = "pw_zstd3",
    .raw = "zstd_raw3",
    .summary = "pagewire content_filter (zstd, level 3) > plain_transport, memory pages",
    .reads = source_kind::memory,
    .decode = stream_coding::zstd,
    .compresses = true,
    .make = make<kZstd3>,
};

}  // namespace zcbench
