#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <pagewire/runtime/ring.h>

namespace pagewire::runtime {
namespace {

int try_setup(io_uring& r, const ring_options& o, unsigned flags) {
  io_uring_params p{};
  p.flags = flags;
  if (o.cq_entries) {
    p.flags |= IORING_SETUP_CQSIZE;
    p.cq_entries = o.cq_entries;
  }
  // An operation with a timeout takes two SQEs at once (it and its LINK_TIMEOUT).
  int rc = io_uring_queue_init_params(std::max(o.entries, 2u), &r, &p);
  return rc;
}

}  // namespace

std::unique_ptr<ring> ring::create(const ring_options& options, std::error_code& ec) {
  std::unique_ptr<ring> r(new ring());
  unsigned flags = 0;
  if (options.coop_taskrun) flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  if (options.single_issuer) flags |= IORING_SETUP_SINGLE_ISSUER;
  if (options.single_issuer && options.defer_taskrun) flags |= IORING_SETUP_DEFER_TASKRUN;
  if (options.enable_lazily) flags |= IORING_SETUP_R_DISABLED;
  flags |= IORING_SETUP_SUBMIT_ALL;
  // Drop flags the kernel refuses with EINVAL, newest first (DEFER_TASKRUN 6.1,
  // SINGLE_ISSUER 6.0, COOP_TASKRUN/TASKRUN_FLAG 5.19, SUBMIT_ALL 5.18).
  const unsigned drop_order[] = {IORING_SETUP_DEFER_TASKRUN, IORING_SETUP_SINGLE_ISSUER,
                                 IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
                                 IORING_SETUP_SUBMIT_ALL};
  int rc = try_setup(r->ring_, options, flags);
  for (unsigned drop : drop_order) {
    if (rc != -EINVAL) break;
    flags &= ~drop;
    rc = try_setup(r->ring_, options, flags);
  }
  if (rc < 0) {
    ec = std::error_code(-rc, std::system_category());
    return nullptr;
  }
  static std::atomic<std::uint64_t> rings_created{0};
  r->id_ = rings_created.fetch_add(1, std::memory_order_relaxed) + 1;
  r->flags_ = flags;
  r->features_ = r->ring_.features;
  r->enabled_ = !(flags & IORING_SETUP_R_DISABLED);
  r->probe_kernel();
  ec.clear();
  return r;
}

ring::~ring() {
  io_uring_queue_exit(&ring_);
}

int ring::enable() noexcept {
  if (enabled_) return 0;
  // liburing 2.3 declares io_uring_enable_rings but its .so lacks the symbol.
  long rc =
      ::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
  if (rc < 0) return -errno;
  enabled_ = true;
  return 0;
}

int ring::submit_and_wait(unsigned wait_nr) noexcept {
  if (!enabled_) {
    int rc = enable();
    if (rc < 0) return rc;
  }
  if (wait_nr == 0) return io_uring_submit_and_get_events(&ring_);
  return io_uring_submit_and_wait(&ring_, wait_nr);
}

int ring::flush_overflow() noexcept {
  if (!enabled_) {
    int rc = enable();
    if (rc < 0) return rc;
  }
  return io_uring_get_events(&ring_);
}

void ring::probe_kernel() {
  io_uring_probe* p = io_uring_get_probe_ring(&ring_);
  if (!p) return;
  probe_.probed = true;
  for (unsigned op = 0; op < 128 && op <= p->last_op; ++op) {
    if (io_uring_opcode_supported(p, static_cast<int>(op))) {
      probe_.ops_mask[op / 64] |= 1ull << (op % 64);
    }
  }
  io_uring_free_probe(p);
  probe_.nop = probe_.supports(IORING_OP_NOP);
  probe_.read_write = probe_.supports(IORING_OP_READ) && probe_.supports(IORING_OP_WRITE);
  probe_.send_recv = probe_.supports(IORING_OP_SEND) && probe_.supports(IORING_OP_RECV);
  probe_.splice = probe_.supports(IORING_OP_SPLICE);
  probe_.tee = probe_.supports(IORING_OP_TEE);
  probe_.send_zc = probe_.supports(IORING_OP_SEND_ZC);
  probe_.sendmsg_zc = probe_.supports(IORING_OP_SENDMSG_ZC);
  probe_.msg_ring = probe_.supports(IORING_OP_MSG_RING);
  probe_.link_timeout = probe_.supports(IORING_OP_LINK_TIMEOUT);
  probe_.socket = probe_.supports(IORING_OP_SOCKET);
  // No opcode for these flags: multishot accept and CANCEL_FD|ALL came in 5.19
  // with OP_SOCKET; multishot recv in 6.0 with OP_SEND_ZC.
  probe_.multishot_accept = probe_.socket;
  probe_.cancel_fd = probe_.socket;
  probe_.multishot_recv = probe_.send_zc;
  // Provided-buffer rings (5.19): register a one-entry ring and drop it again.
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem != MAP_FAILED) {
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = 1;
    reg.bgid = 0xfffe;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) == 0) {
      probe_.buf_ring = true;
      io_uring_unregister_buf_ring(&ring_, 0xfffe);
    }
    munmap(mem, 4096);
  }
}

}  // namespace pagewire::runtime
