#pragma once

/// Range header evaluation for "bytes" (RFC 9110 §14.1-§14.2). Pure function: any thread.
///
/// Choices, all bounded work: a syntactically invalid field, or an unknown unit, is
/// ignored (200, §14.2). More than kMaxRanges ranges, or satisfiable ranges that overlap
/// or are out of ascending order after resolution, are also answered with the whole
/// representation (200): §14.2 lets a server ignore or coalesce such requests, and a
/// full 200 cannot be turned into a many-small-parts amplification. When no range is
/// satisfiable: 416 with "Content-Range: bytes */LEN" (§15.5.17).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace pagewire::http {

inline constexpr std::size_t kMaxRanges = 16;

struct byte_range {
  std::uint64_t first;   // offset of the first byte
  std::uint64_t length;  // > 0
  std::uint64_t last() const { return first + length - 1; }
};

enum class range_outcome : std::uint8_t {
  ignore,         // serve the whole representation, 200
  satisfiable,    // 206 with ranges()
  unsatisfiable,  // 416
};

struct range_set {
  range_outcome outcome = range_outcome::ignore;
  std::uint8_t count = 0;
  std::array<byte_range, kMaxRanges> items{};
  std::span<const byte_range> ranges() const { return {items.data(), count}; }
};

/// Resolves `field` (the Range value) against a representation of `size` bytes.
range_set evaluate_range(std::string_view field, std::uint64_t size);

}  // namespace pagewire::http
