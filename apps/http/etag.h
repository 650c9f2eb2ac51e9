#pragma once

/// Strong entity tags (RFC 9110 §8.8.3) from a file's identity, and entity-tag list
/// matching for If-Match / If-None-Match / If-Range. Pure functions: any thread.

#include <array>
#include <cstdint>
#include <string_view>

#include <pagewire/apps/http/coding.h>

namespace pagewire::http {

/// A quoted strong ETag held inline, e.g. "\"1a2b-400-17f0c3a9e1d2b000-gz\"".
class etag {
 public:
  std::string_view view() const { return std::string_view(buf_.data(), len_); }

  /// "<inode hex>-<size hex>-<mtime ns hex><coding suffix>" in double quotes: any change
  /// of file (inode), length or modification time gives a new tag, and each content
  /// coding its own (RFC 9110 §8.8.3.3). Formatted once per file version per thread (a
  /// 16-entry thread_local cache keyed by all four inputs), copied after that.
  static etag make(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_ns,
                   content_coding coding);

 private:
  static etag format(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_ns,
                     content_coding coding);

  std::array<char, 64> buf_{};
  std::uint8_t len_ = 0;
};

/// Strong comparison (RFC 9110 §8.8.3.2): both strong and the same opaque-tag.
bool strong_match(std::string_view a, std::string_view b);

/// Weak comparison: the same opaque-tag, either may carry W/.
bool weak_match(std::string_view a, std::string_view b);

/// True when `field` ("*" or a list of entity-tags) matches `tag` with the given
/// comparison. A malformed list element ends the scan (what was matched so far stands).
bool etag_list_matches(std::string_view field, std::string_view tag, bool weak);

}  // namespace pagewire::http
