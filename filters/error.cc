#include <string>

#include <pagewire/filters/error.h>

namespace pagewire::filters {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pagewire.filters"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::eof:
        return "end of stream";
      case errc::truncated:
        return "stream truncated inside a record or frame";
      case errc::corrupt_data:
        return "compressed data is corrupt";
      case errc::output_limit:
        return "decompressed output exceeds the configured limit";
      case errc::window_too_large:
        return "zstd frame window exceeds the configured maximum";
      case errc::tls_handshake:
        return "TLS handshake failed";
      case errc::plain_http:
        return "plain HTTP request where TLS was expected";
      case errc::tls_protocol:
        return "TLS protocol error";
      case errc::tls_certificate:
        return "TLS certificate or key cannot be loaded";
      case errc::handshake_timeout:
        return "TLS handshake timed out";
      case errc::no_page_cache:
        return "a filter needs file bytes but has no page cache";
      case errc::pool_exhausted:
        return "page pool exhausted";
      case errc::busy:
        return "operation already outstanding on this layer";
    }
    return "unknown filters error";
  }
};

}  // namespace

const std::error_category& filters_category() noexcept {
  static const category c;
  return c;
}

}  // namespace pagewire::filters
