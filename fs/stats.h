#pragma once

/// The one place pagewire counts bytes that user space copies, on any path, in any layer.
/// A plain file body served over TCP must leave `copied_bytes()` unchanged; tests and zcbench
/// assert that. Counters are process-wide, sharded per thread (relaxed atomics on separate cache
/// lines), so recording costs one uncontended add; reading sums the shards. Thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>

namespace pagewire::fs {

/// Why user space copied bytes; each reason has its own counter.
enum class copy_reason : std::uint8_t {
  filter = 0,  ///< a content filter (gzip, zstd) read or wrote bytes
  tls,         ///< userspace TLS encrypted or decrypted bytes
  fallback,    ///< a refused fast path fell back to read + send
  gather,      ///< small slices gathered into one buffer
  other,       ///< anything else (name it here before using it)
  count_,
};

inline constexpr std::size_t kCopyReasons = static_cast<std::size_t>(copy_reason::count_);

/// A point-in-time sum of every shard; subtract two snapshots to measure a region.
struct copy_snapshot {
  std::array<std::uint64_t, kCopyReasons> bytes{};
  std::array<std::uint64_t, kCopyReasons> calls{};

  std::uint64_t total_bytes() const;
  std::uint64_t total_calls() const;
  copy_snapshot operator-(const copy_snapshot& earlier) const;
};

namespace stats {

/// Adds `bytes` copied for `reason` to the calling thread's shard. Never fails.
void record_copy(std::size_t bytes, copy_reason reason);

/// memcpy that counts: the way pagewire code copies bytes it must copy.
void* copy(void* dst, const void* src, std::size_t bytes, copy_reason reason);

/// Sum of all shards now. Concurrent records may or may not be included.
copy_snapshot snapshot();

/// Total user-space bytes copied so far, all reasons.
std::uint64_t copied_bytes();

}  // namespace stats
}  // namespace pagewire::fs
