#pragma once

/// Serializes a response head (RFC 9112 §4, §5) into caller-provided memory, e.g. the
/// page that becomes the chain's first memory slice. No allocation; any thread.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>

#include <pagewire/apps/http/response.h>
#include <pagewire/apps/http/status.h>

namespace pagewire::http {

/// Appends to a fixed buffer; once something does not fit, finish() reports nullopt.
class head_writer {
 public:
  explicit head_writer(std::span<char> out) : out_(out) {}

  head_writer& raw(std::string_view s) {  // inline: constant-length copies stay memcpy-free
    if (overflow_ || out_.size() - len_ < s.size()) {
      overflow_ = true;
      return *this;
    }
    std::memcpy(out_.data() + len_, s.data(), s.size());
    len_ += s.size();
    return *this;
  }
  head_writer& status_line(status s);  // "HTTP/1.1 404 Not Found\r\n"
  head_writer& field(std::string_view name, std::string_view value) {
    return raw(name).raw(": ").raw(value).raw("\r\n");
  }
  head_writer& field(std::string_view name, std::uint64_t value);
  head_writer& number(std::uint64_t value);  // decimal, no field syntax

  /// Appends the empty line; the head's length, or nullopt when it did not fit.
  std::optional<std::size_t> finish();

 private:
  std::span<char> out_;
  std::size_t len_ = 0;
  bool overflow_ = false;
};

struct head_context {
  std::string_view date;                 // current_http_date()
  std::string_view server = "pagewire";  // Server field value
};

/// Status line and fields in this order: Date, Server, Content-Type, Content-Length
/// (always, except on 304: RFC 9110 §8.6 allows it there only equal to the 200's),
/// Last-Modified, ETag, Accept-Ranges, Content-Range, Content-Encoding,
/// Vary: Accept-Encoding, Allow, Location, Connection (close; keep-alive for HTTP/1.0).
/// Returns the head's length, or nullopt when `out` is too small.
std::optional<std::size_t> build_head(const response& r, const head_context& ctx,
                                      std::span<char> out);

}  // namespace pagewire::http
