#pragma once

/// Content codings the server can send (RFC 9110 §8.4.1), their token and the suffix of a
/// precompressed sibling file. Header-only and stateless: safe from any thread.

#include <cstdint>
#include <string_view>

namespace pagewire::http {

enum class content_coding : std::uint8_t { identity, gzip, zstd };

/// The token sent in Content-Encoding ("" for identity, which is never sent).
constexpr std::string_view coding_token(content_coding c) {
  switch (c) {
    case content_coding::gzip:
      return "gzip";
    case content_coding::zstd:
      return "zstd";
    case content_coding::identity:
      break;
  }
  return "";
}

/// File-name suffix of a precompressed sibling: "index.html" -> "index.html.gz".
constexpr std::string_view sibling_suffix(content_coding c) {
  switch (c) {
    case content_coding::gzip:
      return ".gz";
    case content_coding::zstd:
      return ".zst";
    case content_coding::identity:
      break;
  }
  return "";
}

/// Suffix placed inside the ETag's quotes for this coding: "-gz", "-zst", "" for identity.
constexpr std::string_view etag_suffix(content_coding c) {
  switch (c) {
    case content_coding::gzip:
      return "-gz";
    case content_coding::zstd:
      return "-zst";
    case content_coding::identity:
      break;
  }
  return "";
}

}  // namespace pagewire::http
