#pragma once

/// Errors the filter layers report beyond errno: a std::error_code category of its own
/// ("pagewire.filters") so a caller can tell "the peer spoke no TLS" from "the socket reset".
/// Every asynchronous completion in filters/ carries either these or std::system_category().

#include <system_error>

namespace pagewire::filters {

enum class errc {
  eof = 1,            ///< the peer ended the stream cleanly (FIN, close_notify, end of data)
  truncated,          ///< the stream ended inside a record / frame / gzip member
  corrupt_data,       ///< compressed data failed to decode (bad header, checksum, ...)
  output_limit,       ///< decoded output passed the configured cap (a decompression bomb)
  window_too_large,   ///< a zstd frame asked for a window above windowLogMax
  tls_handshake,      ///< TLS handshake failed (no shared version/cipher, not TLS, ...)
  plain_http,         ///< a server's peer sent a plain HTTP request instead of a ClientHello
  tls_protocol,       ///< TLS record layer error after the handshake (bad MAC, alert)
  tls_certificate,    ///< certificate or key file missing, unreadable or mismatched
  handshake_timeout,  ///< the handshake did not finish within its timeout
  no_page_cache,      ///< a filter must read a file range but has no page_cache
  pool_exhausted,     ///< the page pool refused a page for filter output
  busy,               ///< a second write (or read) while one is outstanding on the layer
};

const std::error_category& filters_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), filters_category()};
}

}  // namespace pagewire::filters

// A standard trait, not pagewire's API: kept out of the reference (make docs).
/// \cond
template <>
struct std::is_error_code_enum<pagewire::filters::errc> : std::true_type {};
/// \endcond
