#include <cerrno>
#include <sys/mman.h>

#include <liburing.h>

#include <pagewire/net/recv_buffer_ring.h>

namespace pagewire::net {

received& received::operator=(received&& o) noexcept {
  if (this != &o) {
    release();
    ring_ = o.ring_;
    heap_ = std::move(o.heap_);
    data_ = o.data_;
    size_ = o.size_;
    id_ = o.id_;
    o.ring_ = nullptr;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void received::release() noexcept {
  if (ring_) ring_->recycle(id_);
  ring_ = nullptr;
  heap_.reset();
  data_ = nullptr;
  size_ = 0;
}

received received::from_ring(recv_buffer_ring& ring, std::uint16_t id, std::size_t n) noexcept {
  received r;
  r.ring_ = &ring;
  r.id_ = id;
  r.size_ = n;
  return r;
}

received received::from_heap(std::unique_ptr<std::byte[]> block, std::size_t n) noexcept {
  received r;
  r.heap_ = std::move(block);
  r.data_ = r.heap_.get();
  r.size_ = n;
  return r;
}

std::unique_ptr<recv_buffer_ring> recv_buffer_ring::create(runtime::context& ctx,
                                                           const options& opts, std::uint16_t group,
                                                           std::error_code& ec) {
  ec.clear();
  if (!ctx.uses_io_uring() || !ctx.probe().buf_ring) {
    ec = std::make_error_code(std::errc::not_supported);
    return nullptr;
  }
  std::unique_ptr<recv_buffer_ring> r(new recv_buffer_ring());
  r->ctx_ = &ctx;
  r->group_ = group;
  r->count_ = opts.recv_buffers;
  r->mask_ = static_cast<unsigned>(io_uring_buf_ring_mask(opts.recv_buffers));
  r->buffer_size_ = opts.recv_buffer_size;
  r->ring_bytes_ = (opts.recv_buffers * sizeof(io_uring_buf) + 4095) & ~std::size_t{4095};
  void* mem =
      ::mmap(nullptr, r->ring_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    ec.assign(errno, std::system_category());
    return nullptr;
  }
  r->ring_ = static_cast<io_uring_buf_ring*>(mem);
  r->buffers_bytes_ = opts.recv_buffers * opts.recv_buffer_size;
  mem = ::mmap(nullptr, r->buffers_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
               0);
  if (mem == MAP_FAILED) {
    ec.assign(errno, std::system_category());
    ::munmap(r->ring_, r->ring_bytes_);
    r->ring_ = nullptr;
    return nullptr;
  }
  r->buffers_ = static_cast<std::byte*>(mem);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<std::uint64_t>(r->ring_);
  reg.ring_entries = opts.recv_buffers;
  reg.bgid = group;
  const int rc = io_uring_register_buf_ring(&ctx.native_ring()->native(), &reg, 0);
  if (rc < 0) {
    ec.assign(-rc, std::system_category());
    ::munmap(r->buffers_, r->buffers_bytes_);
    ::munmap(r->ring_, r->ring_bytes_);
    r->buffers_ = nullptr;
    r->ring_ = nullptr;
    return nullptr;
  }
  io_uring_buf_ring_init(r->ring_);
  for (unsigned i = 0; i < r->count_; ++i) {
    io_uring_buf_ring_add(r->ring_, r->buffers_ + i * r->buffer_size_,
                          static_cast<unsigned>(r->buffer_size_), static_cast<unsigned short>(i),
                          static_cast<int>(r->mask_), static_cast<int>(i));
  }
  io_uring_buf_ring_advance(r->ring_, static_cast<int>(r->count_));
  r->available_ = r->count_;
  return r;
}

recv_buffer_ring::~recv_buffer_ring() {
  if (ring_) {
    io_uring_unregister_buf_ring(&ctx_->native_ring()->native(), group_);
    ::munmap(ring_, ring_bytes_);
  }
  if (buffers_) ::munmap(buffers_, buffers_bytes_);
}

received recv_buffer_ring::take(std::uint16_t id, std::size_t n) noexcept {
  --available_;
  received r = received::from_ring(*this, id, n);
  r.data_ = buffers_ + std::size_t{id} * buffer_size_;
  return r;
}

void recv_buffer_ring::recycle(std::uint16_t id) noexcept {
  io_uring_buf_ring_add(ring_, buffers_ + std::size_t{id} * buffer_size_,
                        static_cast<unsigned>(buffer_size_), id, static_cast<int>(mask_), 0);
  io_uring_buf_ring_advance(ring_, 1);
  ++available_;
  // One waiter per buffer, but one that takes it: a waiter whose receive ended while queued
  // (a timeout) passes the wake-up on, or the next waiter would wait for another buffer that
  // may never come back.
  while (buffer_waiter* w = waiters_) {
    waiters_ = w->next_;
    if (!waiters_) waiters_tail_ = nullptr;
    w->next_ = nullptr;
    w->queued_ = false;
    if (w->buffers_available()) break;
  }
}

void recv_buffer_ring::add_waiter(buffer_waiter& w) noexcept {
  if (w.queued_) return;
  w.queued_ = true;
  w.next_ = nullptr;
  if (waiters_tail_) {
    waiters_tail_->next_ = &w;
  } else {
    waiters_ = &w;
  }
  waiters_tail_ = &w;
}

void recv_buffer_ring::remove_waiter(buffer_waiter& w) noexcept {
  if (!w.queued_) return;
  buffer_waiter* prev = nullptr;
  for (buffer_waiter* p = waiters_; p; prev = p, p = p->next_) {
    if (p != &w) continue;
    if (prev) {
      prev->next_ = p->next_;
    } else {
      waiters_ = p->next_;
    }
    if (waiters_tail_ == p) waiters_tail_ = prev;
    break;
  }
  w.queued_ = false;
  w.next_ = nullptr;
}

}  // namespace pagewire::net
