#pragma once

/// RAII over one liburing `io_uring`: setup with flag fallback, a kernel probe,
/// SQE acquisition that never fails while the kernel can make room, and CQ
/// overflow detection. A ring is owned by one context and used from that
/// context's loop thread only (native() users, e.g. buffer registration, call it
/// from that thread or before the loop first runs). Errors are std::error_code.

#include <cstdint>
#include <memory>
#include <system_error>

#include <liburing.h>

namespace pagewire::runtime {

/// How to set a ring up. Flags the kernel refuses (EINVAL) are dropped one by
/// one, newest first: DEFER_TASKRUN, SINGLE_ISSUER, COOP_TASKRUN.
struct ring_options {
  unsigned entries = 256;     ///< SQ entries (power of two after kernel rounding; at least 2)
  unsigned cq_entries = 0;    ///< 0: kernel default (2 x entries)
  bool single_issuer = true;  ///< IORING_SETUP_SINGLE_ISSUER
  bool defer_taskrun = true;  ///< IORING_SETUP_DEFER_TASKRUN (needs single_issuer)
  bool coop_taskrun = true;   ///< IORING_SETUP_COOP_TASKRUN (+ TASKRUN_FLAG)
  /// Start disabled (IORING_SETUP_R_DISABLED) and enable at the first enter, so the
  /// thread that runs the loop, not the one that built it, becomes the single
  /// issuer. Registrations (fixed buffers, buffer rings) work while disabled.
  bool enable_lazily = true;
};

/// What the running kernel offers, probed once per ring.
struct probe_result {
  bool probed = false;  ///< false: io_uring_get_probe_ring failed; all below false
  bool nop = false;
  bool read_write = false;        ///< IORING_OP_READ / WRITE
  bool send_recv = false;         ///< IORING_OP_SEND / RECV
  bool splice = false;            ///< IORING_OP_SPLICE
  bool tee = false;               ///< IORING_OP_TEE
  bool send_zc = false;           ///< IORING_OP_SEND_ZC (6.0)
  bool sendmsg_zc = false;        ///< IORING_OP_SENDMSG_ZC (6.1)
  bool multishot_accept = false;  ///< IORING_ACCEPT_MULTISHOT (5.19: inferred from OP_SOCKET)
  bool multishot_recv = false;    ///< IORING_RECV_MULTISHOT (6.0: inferred from OP_SEND_ZC)
  bool buf_ring = false;          ///< provided-buffer rings (tested by registering one)
  bool msg_ring = false;          ///< IORING_OP_MSG_RING
  bool link_timeout = false;      ///< IORING_OP_LINK_TIMEOUT
  bool cancel_fd = false;         ///< IORING_ASYNC_CANCEL_FD|ALL (5.19, inferred like accept)
  bool socket = false;            ///< IORING_OP_SOCKET
  bool fixed_buffers = true;      ///< io_uring_register_buffers exists (always, 5.1+)
  /// Raw per-opcode support, indexed by IORING_OP_*; empty when not probed.
  std::uint64_t ops_mask[2] = {0, 0};

  bool supports(unsigned opcode) const noexcept {
    return opcode < 128 && (ops_mask[opcode / 64] >> (opcode % 64) & 1u);
  }
};

class ring {
 public:
  /// Sets up a ring. On failure returns null and sets `ec` (EPERM under seccomp or
  /// kernel.io_uring_disabled=2, ENOSYS on old kernels, ENOMEM for locked memory).
  static std::unique_ptr<ring> create(const ring_options& options, std::error_code& ec);

  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring();

  /// The liburing ring, for registrations (fixed buffers, provided-buffer rings,
  /// files) by upper layers. Do not submit or reap through it directly.
  io_uring& native() noexcept { return ring_; }
  int fd() const noexcept { return ring_.ring_fd; }
  /// This ring's number in the process: never 0, never given to another ring, not even
  /// after this one is destroyed (its address and fd may be). Registries that outlive
  /// rings (fs::page_pool's fixed-buffer tables) know rings by it.
  std::uint64_t id() const noexcept { return id_; }
  unsigned setup_flags() const noexcept { return flags_; }
  unsigned features() const noexcept { return features_; }
  unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }
  unsigned cq_entries() const noexcept { return ring_.cq.ring_entries; }
  const probe_result& probe() const noexcept { return probe_; }

  /// An SQE, or null when the SQ is full (caller submits, reaps, retries).
  io_uring_sqe* try_get_sqe() noexcept { return io_uring_get_sqe(&ring_); }
  unsigned sq_space_left() const noexcept { return io_uring_sq_space_left(&ring_); }
  unsigned sq_ready() const noexcept { return io_uring_sq_ready(&ring_); }

  /// Submits queued SQEs and waits for `wait_nr` CQEs (0: no wait). Returns the
  /// number submitted or a negative errno (EBUSY/EAGAIN: reap, then retry; EINTR).
  int submit_and_wait(unsigned wait_nr) noexcept;

  /// CQEs waiting in the CQ (one load, no system call).
  unsigned cq_ready() const noexcept { return io_uring_cq_ready(&ring_); }
  /// True when the kernel holds task work for this ring that an enter with GETEVENTS would
  /// run, posting its CQEs (IORING_SQ_TASKRUN; set only with COOP_TASKRUN's TASKRUN_FLAG).
  bool task_work_pending() const noexcept {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
  }
  /// True when the kernel holds CQEs it could not post (IORING_SQ_CQ_OVERFLOW).
  bool cq_overflow_pending() const noexcept {
    return IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW;
  }
  /// CQEs the kernel dropped for good (koverflow; stays 0 with IORING_FEAT_NODROP).
  unsigned cq_dropped() const noexcept { return IO_URING_READ_ONCE(*ring_.cq.koverflow); }
  /// Asks the kernel to flush overflowed CQEs (and run deferred task work) into the CQ.
  int flush_overflow() noexcept;

  /// True once the ring is enabled (see ring_options::enable_lazily).
  bool enabled() const noexcept { return enabled_; }

 private:
  ring() = default;
  void probe_kernel();
  int enable() noexcept;

  io_uring ring_{};
  std::uint64_t id_ = 0;
  unsigned flags_ = 0;
  unsigned features_ = 0;
  bool enabled_ = true;
  probe_result probe_;
};

}  // namespace pagewire::runtime
