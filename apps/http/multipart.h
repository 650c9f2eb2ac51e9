#pragma once

/// The multipart/byteranges body plan (RFC 9110 §14.6): the bytes between file ranges,
/// laid out once so the server emits [part head][file range]...[closing delimiter] with
/// the exact Content-Length known before the first byte is sent.
///
/// Ownership: a multipart_plan owns its delimiter bytes (one std::string); parts refer
/// to it by offset. Movable, not shared; build it on the connection's thread.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pagewire/apps/http/range.h>

namespace pagewire::http {

struct multipart_part {
  std::string_view head;      // "[CRLF]--BOUNDARY CRLF Content-Type.. Content-Range.. CRLF CRLF"
  std::uint64_t file_offset;  // then these file bytes
  std::uint64_t file_length;
};

class multipart_plan {
 public:
  /// `boundary`: 1..70 bchars (RFC 2046 §5.1.1); make_boundary() gives one.
  multipart_plan(std::span<const byte_range> ranges, std::uint64_t size,
                 std::string_view content_type, std::string_view boundary);

  multipart_plan(multipart_plan&&) noexcept;
  multipart_plan& operator=(multipart_plan&&) noexcept;
  multipart_plan(const multipart_plan&) = delete;
  multipart_plan& operator=(const multipart_plan&) = delete;

  /// The response's Content-Type: "multipart/byteranges; boundary=BOUNDARY".
  std::string_view content_type() const { return content_type_; }
  std::span<const multipart_part> parts() const { return parts_; }
  /// "CRLF--BOUNDARY--CRLF", sent after the last part's file bytes.
  std::string_view closing() const;
  /// Exact body length: every head, every file range, the closing delimiter.
  std::uint64_t content_length() const { return content_length_; }

 private:
  void rebind();

  std::string bytes_;  // every part head, then the closing delimiter
  std::string content_type_;
  std::vector<multipart_part> parts_;
  std::vector<std::size_t> head_offsets_;
  std::size_t closing_offset_ = 0;
  std::uint64_t content_length_ = 0;
};

/// A 20-character boundary ("pw" + 18 hex digits) mixed from `seed` (e.g. a per-thread
/// counter); boundaries need only be unlikely in the content, not secret.
std::string make_boundary(std::uint64_t seed);

}  // namespace pagewire::http
