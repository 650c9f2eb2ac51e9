#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pagewire/runtime/context.h>
#include <pagewire/runtime/fallback_backend.h>

namespace asio = boost::asio;

namespace pagewire::runtime {
namespace {

constexpr std::uint64_t kNoOffset = ~0ull;

int sys(long rc) {
  return rc < 0 ? -errno : static_cast<int>(rc);
}

// pollable: the reactor can wait on the fd (not a regular file or block device). stream: a pipe
// or socket, which has no file position: io_uring ignores a read's or write's offset on one
// (FMODE_STREAM) where pread/pwrite would fail with ESPIPE.
struct fd_kind {
  bool pollable = false;
  bool stream = false;
};

fd_kind kind_of(int fd) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return {};
  return {!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode),
          S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)};
}

bool pollable(int fd) {
  return kind_of(fd).pollable;
}

// One read or write as io_uring does it: at `off` (kNoOffset, or any offset on a stream: the
// file position) and, on a pollable fd, without waiting for data or room even when the fd lacks
// O_NONBLOCK. RWF_NOWAIT gives EAGAIN, or a short count, where a plain write(2) to a blocking
// pipe or socket would hold the loop's thread until a reader came (for ever, when the reader
// runs on this loop). A file that refuses RWF_NOWAIT (EOPNOTSUPP: some character devices,
// kernels before 4.14) gets the plain call.
long transfer(bool write, int fd, const iovec* iov, int count, std::uint64_t off, fd_kind kind) {
  const off_t at = off == kNoOffset || kind.stream ? -1 : static_cast<off_t>(off);
  if (kind.pollable) {
    const long rc = write ? ::pwritev2(fd, iov, count, at, RWF_NOWAIT)
                          : ::preadv2(fd, iov, count, at, RWF_NOWAIT);
    if (rc >= 0 || errno != EOPNOTSUPP) return rc;
  }
  return write ? ::pwritev2(fd, iov, count, at, 0) : ::preadv2(fd, iov, count, at, 0);
}

short ready_events(int fd, short events) {
  pollfd p{fd, events, 0};
  if (::poll(&p, 1, 0) <= 0) return 0;
  return p.revents;
}

std::size_t msg_bytes(const io_uring_sqe& s) {
  const auto* m = reinterpret_cast<const msghdr*>(s.addr);
  std::size_t n = 0;
  for (std::size_t i = 0; i < m->msg_iovlen; ++i)
    n += m->msg_iov[i].iov_len;
  return n;
}

// As io_uring fails a link: on an error; on a short read/write/splice; on a short
// send/recv only with MSG_WAITALL (without it a short transfer is a success).
bool breaks_chain(const io_uring_sqe& s, int res) {
  if (res < 0) return true;
  const auto got = static_cast<std::size_t>(res);
  const bool waitall = s.msg_flags & MSG_WAITALL;
  switch (s.opcode) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_SPLICE:
      return got != s.len;
    case IORING_OP_SEND:
    case IORING_OP_SEND_ZC:
    case IORING_OP_RECV:
      return waitall && got < s.len;
    case IORING_OP_SENDMSG:
    case IORING_OP_SENDMSG_ZC:
    case IORING_OP_RECVMSG:
      return waitall && got < msg_bytes(s);
    default:
      return false;
  }
}

std::chrono::nanoseconds timeout_of(const __kernel_timespec* ts, bool absolute) {
  std::chrono::nanoseconds d{ts->tv_sec * 1000000000ll + ts->tv_nsec};
  if (absolute) {
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    d -= std::chrono::nanoseconds{now.tv_sec * 1000000000ll + now.tv_nsec};
  }
  return d.count() > 0 ? d : std::chrono::nanoseconds{0};
}

enum class need : std::uint8_t { none, read, write, timer };

}  // namespace

struct fallback_backend::guard {
  explicit guard(asio::io_context& io) : work(io.get_executor()) {}
  asio::executor_work_guard<asio::io_context::executor_type> work;
};

struct fallback_backend::job {
  struct entry {
    io_uring_sqe sqe;
    bool has_timeout = false;
    __kernel_timespec timeout{};
  };
  std::vector<entry> entries;
  std::size_t index = 0;
  bool cancelled = false;
  bool connecting = false;
  bool failed = false;                // the chain broke: the rest completes with -ECANCELED
  std::uint64_t notif_user_data = 0;  // a SEND_ZC whose NOTIF is still to be delivered
  std::unique_ptr<asio::posix::stream_descriptor> desc;
  std::unique_ptr<asio::steady_timer> timer;
  std::unique_ptr<asio::steady_timer> link_timer;
};

fallback_backend::fallback_backend(context& ctx, asio::io_context* host) : ctx_(ctx) {
  if (host) {
    io_ = host;
  } else {
    own_io_ = std::make_unique<asio::io_context>(1);
    io_ = own_io_.get();
    guard_ = std::make_unique<guard>(*io_);
  }
}

fallback_backend::~fallback_backend() {
  *alive_ = false;  // handlers still queued on a host io_context find this and do nothing
  for (auto& [p, j] : jobs_) {
    j->desc.reset();
    j->timer.reset();
    j->link_timer.reset();
  }
  jobs_.clear();
  guard_.reset();
  own_io_.reset();
}

io_uring_sqe* fallback_backend::acquire() {
  io_uring_sqe& s = staged_.emplace_back();
  std::memset(&s, 0, sizeof(s));
  return &s;
}

void fallback_backend::flush() {
  if (staged_.empty()) return;
  std::shared_ptr<job> current;
  for (const io_uring_sqe& s : staged_) {
    if (s.opcode == IORING_OP_LINK_TIMEOUT) {
      if (current && !current->entries.empty()) {
        job::entry& e = current->entries.back();
        e.has_timeout = true;
        e.timeout = *reinterpret_cast<const __kernel_timespec*>(s.addr);
      }
      if (!(s.flags & IOSQE_IO_LINK) && current) {
        start_job(std::move(current));
        current.reset();
      }
      continue;
    }
    if (!current) current = std::make_shared<job>();
    current->entries.push_back({s, false, {}});
    if (!(s.flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK))) {
      start_job(std::move(current));
      current.reset();
    }
  }
  if (current) start_job(std::move(current));  // a chain cut by the end of the batch
  staged_.clear();
}

void fallback_backend::start_job(std::shared_ptr<job> j) {
  jobs_.emplace(j.get(), j);
  index(*j);
  post_job(std::move(j), &fallback_backend::step);
}

// Each step, result and cancellation runs as a handler of its own. It does nothing once this
// backend is gone (a host's io_context outlives it) or the job ended (abandon()).
void fallback_backend::post_job(std::shared_ptr<job> j,
                                void (fallback_backend::*fn)(const std::shared_ptr<job>&)) {
  asio::post(*io_, [this, a = alive_, j = std::move(j), fn] {
    if (*a && jobs_.count(j.get())) (this->*fn)(j);
  });
}

bool fallback_backend::run_one() {
  return io_->run_one() > 0;
}

bool fallback_backend::poll_one() {
  return io_->poll_one() > 0;
}

void fallback_backend::wake() {
  asio::post(*io_, [this, a = alive_] {
    if (*a) ctx_.drain_remote();
  });
}

void fallback_backend::cancel_job(const std::shared_ptr<job>& j) {
  j->cancelled = true;
  if (j->desc) j->desc->cancel();
  if (j->timer) j->timer->cancel();
}

void fallback_backend::cancel(std::uint64_t user_data) {
  flush();
  const auto it = by_user_data_.find(user_data);
  if (it != by_user_data_.end()) cancel_job(jobs_.at(it->second));
}

void fallback_backend::cancel_fd(int fd) {
  flush();
  const auto [first, last] = by_fd_.equal_range(fd);
  for (auto it = first; it != last; ++it)
    cancel_job(jobs_.at(it->second));  // marks and cancels waits: the index stays as it is
}

namespace {

// SEND_ZC and SENDMSG_ZC: operations the kernel ends with a notification CQE.
bool notifies(const io_uring_sqe& s) {
  return s.opcode == IORING_OP_SEND_ZC || s.opcode == IORING_OP_SENDMSG_ZC;
}

// The fds cancel_fd() matches an entry by: its fd, and a splice's input.
int second_fd(const io_uring_sqe& s) {
  const int in = static_cast<int>(s.splice_fd_in);
  return s.opcode == IORING_OP_SPLICE && in != s.fd ? in : -1;
}

template <typename Map, typename Key>
void erase_pair(Map& map, const Key& key, fallback_backend::job* j) {
  const auto [first, last] = map.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (it->second == j) {
      map.erase(it);
      return;
    }
  }
}

}  // namespace

void fallback_backend::index(job& j) {
  if (j.index >= j.entries.size()) return;
  const io_uring_sqe& s = j.entries[j.index].sqe;
  by_user_data_.emplace(s.user_data, &j);
  if (s.fd >= 0) by_fd_.emplace(s.fd, &j);  // not timers' -1: one bucket for all of them
  if (const int in = second_fd(s); in >= 0) by_fd_.emplace(in, &j);
}

void fallback_backend::unindex(job& j) {
  if (j.index >= j.entries.size()) return;
  const io_uring_sqe& s = j.entries[j.index].sqe;
  erase_pair(by_user_data_, s.user_data, &j);
  if (s.fd >= 0) erase_pair(by_fd_, s.fd, &j);
  if (const int in = second_fd(s); in >= 0) erase_pair(by_fd_, in, &j);
}

void fallback_backend::cancel_all() {
  flush();
  for (auto& [p, j] : jobs_)
    cancel_job(j);
}

void fallback_backend::end_job(const std::shared_ptr<job>& j) {
  unindex(*j);
  jobs_.erase(j.get());
}

void fallback_backend::wait_ready(const std::shared_ptr<job>& j, int fd, bool write) {
  const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return finish_entry(j, -errno);
  boost::system::error_code ec;
  j->desc = std::make_unique<asio::posix::stream_descriptor>(*io_);
  j->desc->assign(dup, ec);
  if (ec) {
    ::close(dup);
    j->desc.reset();
    return finish_entry(j, -ec.value());
  }
  j->desc->async_wait(write ? asio::posix::stream_descriptor::wait_write
                            : asio::posix::stream_descriptor::wait_read,
                      [this, a = alive_, j](const boost::system::error_code& e) {
                        if (!*a || !jobs_.count(j.get())) return;
                        j->desc.reset();
                        if (e || j->cancelled) return finish_entry(j, -ECANCELED);
                        step(j);
                      });
}

namespace {

// Runs one SQE's syscall. Sets `w`/`wfd` when it would block instead.
int execute(const io_uring_sqe& s, bool& connecting, need& w, int& wfd) {
  const int fd = s.fd;
  void* addr = reinterpret_cast<void*>(s.addr);
  w = need::none;
  wfd = fd;
  auto would_block = [&](need n, int f) {
    w = n;
    wfd = f;
    return 0;
  };
  // Registered files and provided buffers belong to a ring, and there is none here. An fd
  // flagged IOSQE_FIXED_FILE is an index into a table, not a descriptor of this process: taken
  // as one, it would read or write whatever file happens to be open under that number.
  if (s.flags & (IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT)) return -EINVAL;
  // READ/WRITE[_FIXED] name one buffer, READV/WRITEV an iovec array of `len` entries.
  const iovec single{addr, s.len};
  const bool vectored = s.opcode == IORING_OP_READV || s.opcode == IORING_OP_WRITEV;
  const iovec* iov = vectored ? static_cast<const iovec*>(addr) : &single;
  const int iov_count = vectored ? static_cast<int>(s.len) : 1;
  switch (s.opcode) {
    case IORING_OP_NOP:
      return 0;
    case IORING_OP_READ:
    case IORING_OP_READ_FIXED:
    case IORING_OP_READV: {
      const fd_kind kind = kind_of(fd);
      if (kind.pollable && !(ready_events(fd, POLLIN) & (POLLIN | POLLHUP | POLLERR))) {
        return would_block(need::read, fd);
      }
      const long rc = transfer(false, fd, iov, iov_count, s.off, kind);
      if (rc < 0 && errno == EAGAIN) return would_block(need::read, fd);
      return sys(rc);
    }
    case IORING_OP_WRITE:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_WRITEV: {
      const fd_kind kind = kind_of(fd);
      if (kind.pollable && !(ready_events(fd, POLLOUT) & (POLLOUT | POLLHUP | POLLERR))) {
        return would_block(need::write, fd);
      }
      const long rc = transfer(true, fd, iov, iov_count, s.off, kind);
      if (rc < 0 && errno == EAGAIN) return would_block(need::write, fd);
      return sys(rc);
    }
    case IORING_OP_SEND:
    case IORING_OP_SEND_ZC: {
      long rc =
          ::send(fd, addr, s.len, static_cast<int>(s.msg_flags) | MSG_DONTWAIT | MSG_NOSIGNAL);
      if (rc < 0 && errno == EAGAIN) return would_block(need::write, fd);
      return sys(rc);
    }
    case IORING_OP_SENDMSG:
    case IORING_OP_SENDMSG_ZC: {
      long rc = ::sendmsg(fd, static_cast<const msghdr*>(addr),
                          static_cast<int>(s.msg_flags) | MSG_DONTWAIT | MSG_NOSIGNAL);
      if (rc < 0 && errno == EAGAIN) return would_block(need::write, fd);
      return sys(rc);
    }
    case IORING_OP_RECV:
    case IORING_OP_RECVMSG: {
      long rc = s.opcode == IORING_OP_RECV
                    ? ::recv(fd, addr, s.len, static_cast<int>(s.msg_flags) | MSG_DONTWAIT)
                    : ::recvmsg(fd, static_cast<msghdr*>(addr),
                                static_cast<int>(s.msg_flags) | MSG_DONTWAIT);
      if (rc < 0 && errno == EAGAIN) return would_block(need::read, fd);
      return sys(rc);
    }
    case IORING_OP_ACCEPT: {
      if (s.file_index) return -EINVAL;  // no fixed-file table to accept into
      if (!(ready_events(fd, POLLIN) & (POLLIN | POLLERR | POLLHUP)))
        return would_block(need::read, fd);
      int rc = ::accept4(fd, static_cast<sockaddr*>(addr), reinterpret_cast<socklen_t*>(s.addr2),
                         static_cast<int>(s.accept_flags));
      if (rc < 0 && (errno == EAGAIN || errno == ECONNABORTED)) return would_block(need::read, fd);
      return sys(rc);
    }
    case IORING_OP_CONNECT: {
      if (connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
        connecting = false;
        return -err;
      }
      const int fl = ::fcntl(fd, F_GETFL);
      if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
      int rc = ::connect(fd, static_cast<const sockaddr*>(addr), static_cast<socklen_t>(s.off));
      const int err = errno;
      if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl);
      if (rc < 0 && (err == EINPROGRESS || err == EAGAIN)) {
        connecting = true;
        return would_block(need::write, fd);
      }
      return rc < 0 ? -err : 0;
    }
    case IORING_OP_SPLICE:
    case IORING_OP_TEE: {
      if (s.splice_flags & SPLICE_F_FD_IN_FIXED) return -EINVAL;
      const int in = static_cast<int>(s.splice_fd_in);
      if (pollable(in) && !(ready_events(in, POLLIN) & (POLLIN | POLLHUP | POLLERR))) {
        return would_block(need::read, in);
      }
      if (pollable(fd) && !(ready_events(fd, POLLOUT) & (POLLOUT | POLLHUP | POLLERR))) {
        return would_block(need::write, fd);
      }
      long rc;
      if (s.opcode == IORING_OP_TEE) {
        rc = ::tee(in, fd, s.len, s.splice_flags | SPLICE_F_NONBLOCK);
      } else {
        loff_t off_in = static_cast<loff_t>(s.splice_off_in);
        loff_t off_out = static_cast<loff_t>(s.off);
        rc = ::splice(in, s.splice_off_in == kNoOffset ? nullptr : &off_in, fd,
                      s.off == kNoOffset ? nullptr : &off_out, s.len,
                      s.splice_flags | SPLICE_F_NONBLOCK);
      }
      if (rc < 0 && errno == EAGAIN) {
        if (pollable(in) && !(ready_events(in, POLLIN) & POLLIN))
          return would_block(need::read, in);
        return would_block(need::write, fd);
      }
      return sys(rc);
    }
    case IORING_OP_TIMEOUT:
      return would_block(need::timer, -1);
    case IORING_OP_POLL_ADD: {
      if (s.len & IORING_POLL_ADD_MULTI) return -EINVAL;
      const short events = static_cast<short>(s.poll32_events);
      const short got = ready_events(fd, static_cast<short>(events | POLLERR | POLLHUP));
      if (got) return got;
      return would_block(events & POLLIN ? need::read : need::write, fd);
    }
    case IORING_OP_CLOSE:
      return sys(::close(fd));
    case IORING_OP_SHUTDOWN:
      return sys(::shutdown(fd, static_cast<int>(s.len)));
    case IORING_OP_FSYNC:
      return sys(s.fsync_flags & IORING_FSYNC_DATASYNC ? ::fdatasync(fd) : ::fsync(fd));
    case IORING_OP_OPENAT:
      return sys(::openat(fd, static_cast<const char*>(addr), static_cast<int>(s.open_flags),
                          static_cast<mode_t>(s.len)));
    case IORING_OP_OPENAT2:
      return sys(::syscall(SYS_openat2, fd, static_cast<const char*>(addr),
                           reinterpret_cast<open_how*>(s.off), static_cast<std::size_t>(s.len)));
    case IORING_OP_STATX:
      return sys(::statx(fd, static_cast<const char*>(addr), static_cast<int>(s.statx_flags), s.len,
                         reinterpret_cast<struct statx*>(s.off)));
    default:
      return -EINVAL;
  }
}

}  // namespace

void fallback_backend::step(const std::shared_ptr<job>& j) {
  if (j->index >= j->entries.size()) return end_job(j);
  job::entry& e = j->entries[j->index];
  if (j->cancelled) return finish_entry(j, -ECANCELED);
  if (e.has_timeout && !j->link_timer) {
    j->link_timer = std::make_unique<asio::steady_timer>(*io_);
    j->link_timer->expires_after(timeout_of(&e.timeout, false));
    const std::size_t index = j->index;
    j->link_timer->async_wait([this, a = alive_, j, index](const boost::system::error_code& ec) {
      if (*a && !ec && j->index == index && jobs_.count(j.get())) cancel_job(j);
    });
  }
  need w;
  int wfd;
  const int res = execute(e.sqe, j->connecting, w, wfd);
  switch (w) {
    case need::none:
      return finish_entry(j, res);
    case need::read:
    case need::write:
      return wait_ready(j, wfd, w == need::write);
    case need::timer: {
      j->timer = std::make_unique<asio::steady_timer>(*io_);
      const auto* ts = reinterpret_cast<const __kernel_timespec*>(e.sqe.addr);
      j->timer->expires_after(timeout_of(ts, e.sqe.timeout_flags & IORING_TIMEOUT_ABS));
      j->timer->async_wait([this, a = alive_, j](const boost::system::error_code& ec) {
        if (!*a || !jobs_.count(j.get())) return;
        j->timer.reset();
        // Only a wait the cancel reached is cancelled: one that expired first stays a success
        // (io_uring's cancel finds no timeout that already fired; Asio's timers agree).
        finish_entry(j, ec ? -ECANCELED : -ETIME);
      });
      return;
    }
  }
}

void fallback_backend::finish_entry(const std::shared_ptr<job>& j, int res) {
  job::entry& e = j->entries[j->index];
  const io_uring_sqe s = e.sqe;
  const std::uint64_t ud = s.user_data;
  if (j->link_timer) j->link_timer.reset();
  const bool multishot = s.opcode == IORING_OP_ACCEPT && (s.ioprio & IORING_ACCEPT_MULTISHOT);
  if (multishot && res >= 0 && !j->cancelled) {
    ctx_.deliver(ud, res, IORING_CQE_F_MORE);
    post_job(j, &fallback_backend::step);
    return;
  }
  const bool zc = notifies(s);
  unindex(*j);
  ++j->index;
  j->cancelled = false;
  j->failed = breaks_chain(s, res);
  if (!j->failed) index(*j);  // a chain's next entry, cancellable while this result is delivered
  // The kernel answers a SEND_ZC it issued with two CQEs even when it failed or was cancelled:
  // the result with F_MORE, then the notification.
  if (zc) {
    j->notif_user_data = ud;
    ctx_.deliver(ud, res, IORING_CQE_F_MORE);
    post_job(j, &fallback_backend::deliver_notif);
    return;
  }
  ctx_.deliver(ud, res, 0);
  advance(j);
}

void fallback_backend::deliver_notif(const std::shared_ptr<job>& j) {
  const std::uint64_t ud = std::exchange(j->notif_user_data, 0);
  ctx_.deliver(ud, 0, IORING_CQE_F_NOTIF);
  advance(j);
}

// After a result: the next entry's step or, the chain broken, its -ECANCELED (one CQE, one
// handler, as run_one() expects).
void fallback_backend::advance(const std::shared_ptr<job>& j) {
  if (j->index >= j->entries.size()) return end_job(j);
  post_job(j, j->failed ? &fallback_backend::cancel_next : &fallback_backend::step);
}

void fallback_backend::cancel_next(const std::shared_ptr<job>& j) {
  ctx_.deliver(j->entries[j->index++].sqe.user_data, -ECANCELED, 0);
  advance(j);
}

void fallback_backend::abandon() {
  flush();
  std::vector<std::shared_ptr<job>> left;
  left.reserve(jobs_.size());
  for (auto& [p, j] : jobs_)
    left.push_back(j);
  for (const std::shared_ptr<job>& j : left) {
    end_job(j);  // first: the handlers still queued for it find it gone
    j->desc.reset();
    j->timer.reset();
    j->link_timer.reset();
    if (const std::uint64_t ud = std::exchange(j->notif_user_data, 0)) {
      ctx_.deliver(ud, 0, IORING_CQE_F_NOTIF);
    }
    // The entry under way was issued: a cancelled SEND_ZC answers with -ECANCELED and F_MORE,
    // then its notification, as the kernel's does (and as finish_entry() does for a cancel).
    if (j->index < j->entries.size() && notifies(j->entries[j->index].sqe)) {
      const std::uint64_t ud = j->entries[j->index++].sqe.user_data;
      ctx_.deliver(ud, -ECANCELED, IORING_CQE_F_MORE);
      ctx_.deliver(ud, 0, IORING_CQE_F_NOTIF);
    }
    // The rest of a chain was never issued: one -ECANCELED each, as cancel_next() gives (the
    // kernel's broken link posts its result without F_MORE; the notification it adds later
    // finds the operation completed).
    while (j->index < j->entries.size()) {
      ctx_.deliver(j->entries[j->index++].sqe.user_data, -ECANCELED, 0);
    }
  }
}

}  // namespace pagewire::runtime
