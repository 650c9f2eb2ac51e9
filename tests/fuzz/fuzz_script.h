#pragma once

// What the scripted fuzz targets share: the reader of their input script, and the bytes their
// streams carry.

#include <cstddef>
#include <cstdint>

namespace fuzz_script {

// The script, read front to back; zeros once it is used up.
struct script {
  const std::uint8_t* p;
  std::size_t n;
  bool done() const noexcept { return n == 0; }
  std::uint8_t u8() noexcept {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::uint16_t u16() noexcept {
    const std::uint16_t lo = u8();
    return static_cast<std::uint16_t>(lo | u8() << 8);
  }
};

// Byte i of a stream: a mix of i (and of the stream's salt), so a byte lost, repeated or moved
// shows.
inline std::byte pattern(std::uint64_t i, std::uint32_t salt) {
  std::uint32_t h = static_cast<std::uint32_t>(i) * 0x9e3779b1u + salt;
  h ^= h >> 15;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  return static_cast<std::byte>(h);
}

}  // namespace fuzz_script
