#pragma once

/// recv_buffer_ring: a provided-buffer ring (io_uring_register_buf_ring; liburing 2.3 has no
/// io_uring_setup_buf_ring, so the ring memory is mmap'd here) that multishot receives of every
/// connection on one context pick buffers from. A received block is handed up as a `received`
/// view of the buffer the kernel filled (no copy); destroying or release()-ing the view gives the
/// buffer back to the ring. When the ring runs dry the kernel ends multishot receives with
/// ENOBUFS; connections waiting for a buffer queue here and are re-armed, one per buffer given
/// back (never a busy loop).
///
/// Ownership: the ring owns its buffers; a `received` borrows one until released. The ring must
/// outlive every `received` it produced and every receive armed on it. Threading: the loop
/// thread of its context only. Errors: create() returns null and sets `ec` when the context has
/// no buffer rings (fallback backend, kernel < 5.19) or registration fails.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include <pagewire/net/policy.h>
#include <pagewire/runtime/context.h>

struct io_uring_buf_ring;

namespace pagewire::net {

class recv_buffer_ring;

/// Received bytes: a view of one ring buffer, or of a heap block (plain recv). Move-only; gives
/// the buffer back when destroyed or released. An empty `received` (size 0) means end of stream
/// where a receive completes with it.
class received {
 public:
  received() noexcept = default;
  received(received&& o) noexcept
      : ring_(std::exchange(o.ring_, nullptr)),
        heap_(std::move(o.heap_)),
        data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        id_(o.id_) {}
  received& operator=(received&& o) noexcept;
  received(const received&) = delete;
  received& operator=(const received&) = delete;
  ~received() { release(); }

  std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  /// Gives the buffer back now (idempotent).
  void release() noexcept;

  /// A view of ring buffer `id` (used by connection).
  static received from_ring(recv_buffer_ring& ring, std::uint16_t id, std::size_t n) noexcept;
  /// Takes ownership of a heap block holding `n` bytes (plain recv).
  static received from_heap(std::unique_ptr<std::byte[]> block, std::size_t n) noexcept;

 private:
  friend class recv_buffer_ring;
  recv_buffer_ring* ring_ = nullptr;
  std::unique_ptr<std::byte[]> heap_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::uint16_t id_ = 0;
};

/// Something waiting for a buffer to come back (a connection whose receive ended ENOBUFS).
class buffer_waiter {
 public:
  /// A buffer came back. True when this waiter took the wake-up (it armed a receive); false
  /// when it no longer waits (its receive ended meanwhile: a timeout), and the ring wakes the
  /// next waiter instead.
  virtual bool buffers_available() = 0;

 protected:
  ~buffer_waiter() = default;

 private:
  friend class recv_buffer_ring;
  buffer_waiter* next_ = nullptr;
  bool queued_ = false;
};

class recv_buffer_ring {
 public:
  /// Registers a ring of opts.recv_buffers buffers of opts.recv_buffer_size bytes as buffer
  /// group `group` on ctx's ring. Loop thread (or before the loop runs).
  static std::unique_ptr<recv_buffer_ring> create(runtime::context& ctx, const options& opts,
                                                  std::uint16_t group, std::error_code& ec);
  recv_buffer_ring(const recv_buffer_ring&) = delete;
  recv_buffer_ring& operator=(const recv_buffer_ring&) = delete;
  /// Unregisters. Precondition: no receive armed on it, no `received` outstanding.
  ~recv_buffer_ring();

  std::uint16_t group() const noexcept { return group_; }
  std::size_t buffer_size() const noexcept { return buffer_size_; }
  /// Buffers the kernel may fill now.
  std::size_t available() const noexcept { return available_; }
  /// Buffers handed out and not yet given back.
  std::size_t outstanding() const noexcept { return count_ - available_; }

  /// The view for a CQE that carried buffer `id` with `n` bytes (the buffer leaves the ring).
  received take(std::uint16_t id, std::size_t n) noexcept;
  /// Gives buffer `id` back to the kernel; wakes one waiter (the first that still waits).
  void recycle(std::uint16_t id) noexcept;

  void add_waiter(buffer_waiter& w) noexcept;
  void remove_waiter(buffer_waiter& w) noexcept;

 private:
  recv_buffer_ring() = default;

  runtime::context* ctx_ = nullptr;
  io_uring_buf_ring* ring_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::byte* buffers_ = nullptr;
  std::size_t buffers_bytes_ = 0;
  std::size_t buffer_size_ = 0;
  unsigned count_ = 0;
  unsigned mask_ = 0;
  std::size_t available_ = 0;
  std::uint16_t group_ = 0;
  buffer_waiter* waiters_ = nullptr;
  buffer_waiter* waiters_tail_ = nullptr;
};

}  // namespace pagewire::net
