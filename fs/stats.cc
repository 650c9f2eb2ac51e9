#include <atomic>
#include <cstring>

#include <pagewire/fs/stats.h>

namespace pagewire::fs {
namespace {

constexpr std::size_t kShards = 16;

struct alignas(64) shard {
  std::array<std::atomic<std::uint64_t>, kCopyReasons> bytes{};
  std::array<std::atomic<std::uint64_t>, kCopyReasons> calls{};
};

shard g_shards[kShards];
std::atomic<std::size_t> g_next_shard{0};

shard& my_shard() {
  thread_local shard* mine =
      &g_shards[g_next_shard.fetch_add(1, std::memory_order_relaxed) % kShards];
  return *mine;
}

}  // namespace

std::uint64_t copy_snapshot::total_bytes() const {
  std::uint64_t sum = 0;
  for (auto b : bytes)
    sum += b;
  return sum;
}

std::uint64_t copy_snapshot::total_calls() const {
  std::uint64_t sum = 0;
  for (auto c : calls)
    sum += c;
  return sum;
}

copy_snapshot copy_snapshot::operator-(const copy_snapshot& earlier) const {
  copy_snapshot d;
  for (std::size_t i = 0; i < kCopyReasons; ++i) {
    d.bytes[i] = bytes[i] - earlier.bytes[i];
    d.calls[i] = calls[i] - earlier.calls[i];
  }
  return d;
}

namespace stats {

void record_copy(std::size_t bytes, copy_reason reason) {
  auto i = static_cast<std::size_t>(reason);
  if (i >= kCopyReasons) i = static_cast<std::size_t>(copy_reason::other);
  shard& s = my_shard();
  s.bytes[i].fetch_add(bytes, std::memory_order_relaxed);
  s.calls[i].fetch_add(1, std::memory_order_relaxed);
}

void* copy(void* dst, const void* src, std::size_t bytes, copy_reason reason) {
  if (bytes != 0) std::memcpy(dst, src, bytes);
  record_copy(bytes, reason);
  return dst;
}

copy_snapshot snapshot() {
  copy_snapshot snap;
  for (const shard& s : g_shards) {
    for (std::size_t i = 0; i < kCopyReasons; ++i) {
      snap.bytes[i] += s.bytes[i].load(std::memory_order_relaxed);
      snap.calls[i] += s.calls[i].load(std::memory_order_relaxed);
    }
  }
  return snap;
}

std::uint64_t copied_bytes() {
  return snapshot().total_bytes();
}

}  // namespace stats
}  // namespace pagewire::fs
