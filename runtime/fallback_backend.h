#pragma once

/// The backend used when io_uring cannot be set up (EPERM under seccomp,
/// kernel.io_uring_disabled) or when forced (backend_kind::fallback,
/// PAGEWIRE_FORCE_FALLBACK=1). The SAME operation objects run: the context has
/// them prepare() into a staged io_uring_sqe, and this backend interprets the
/// opcode with plain syscalls on Boost.Asio's epoll reactor:
///   NOP; READ/WRITE/READ_FIXED/WRITE_FIXED/READV/WRITEV -> preadv2/pwritev2 (offset -1: the
///   file position; a pipe's or socket's offset is ignored, as io_uring ignores it; RWF_NOWAIT
///   on pollable fds, so a blocking pipe or socket gives a short count, as on io_uring, instead
///   of blocking the loop); SEND/RECV/SENDMSG/RECVMSG (MSG_DONTWAIT: a receive with MSG_WAITALL
///   completes with what one call gets, where io_uring waits for it all); SEND_ZC/SENDMSG_ZC ->
///   plain send then a synthesized F_NOTIF CQE (after a failure or a cancellation too, as the
///   kernel does); ACCEPT (multishot too); CONNECT;
///   SPLICE; TEE; TIMEOUT; POLL_ADD; CLOSE; SHUTDOWN; FSYNC; OPENAT; OPENAT2; STATX;
///   LINK_TIMEOUT and IOSQE_IO_LINK chains (run one after another; a failure, or a
///   short transfer as io_uring counts one, cancels the rest). Anything else (provided buffers,
///   fixed files (IOSQE_FIXED_FILE: never taken as a plain fd), multishot recv) completes with
///   -EINVAL.
/// An operation on a socket, pipe or other pollable fd that would block waits for
/// readiness through the reactor (on a dup of the fd, so concurrent waits on one
/// socket never clash) and retries. Every result reaches the context through
/// context::deliver(), one Asio handler per CQE (a cancelled link's -ECANCELED and a
/// SEND_ZC's NOTIF each get their own), so run_one() keeps its meaning. Handlers left
/// queued on a host io_context after this backend is destroyed do nothing.
/// Owned by its context; all calls but wake() on the context's loop thread.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <unordered_map>

#include <liburing.h>

namespace boost::asio {
class io_context;
}

namespace pagewire::runtime {

class context;

class fallback_backend {
 public:
  /// Runs on `host` when given (hosted mode), else on an io_context of its own.
  fallback_backend(context& ctx, boost::asio::io_context* host);
  ~fallback_backend();
  fallback_backend(const fallback_backend&) = delete;
  fallback_backend& operator=(const fallback_backend&) = delete;

  boost::asio::io_context& io() noexcept { return *io_; }

  /// A zeroed staging SQE; stays valid until flush().
  io_uring_sqe* acquire();
  /// Starts every staged SQE (chains by IOSQE_IO_LINK).
  void flush();
  /// Blocks until one reactor handler ran (false: the io_context is stopped).
  bool run_one();
  /// Runs one ready reactor handler without blocking.
  bool poll_one();
  /// Wakes run_one() (any thread).
  void wake();

  void cancel(std::uint64_t user_data);
  void cancel_fd(int fd);
  void cancel_all();
  std::size_t jobs() const noexcept { return jobs_.size(); }
  /// Completes every job's remaining operations now, with -ECANCELED, without the
  /// io_context (teardown when a host's io_context is stopped and runs no handler). A SEND_ZC
  /// under way gets two CQEs, as a cancelled one does from the kernel: -ECANCELED with
  /// F_MORE, then its notification.
  void abandon();

  struct job;

 private:
  void start_job(std::shared_ptr<job> j);
  void step(const std::shared_ptr<job>& j);
  void wait_ready(const std::shared_ptr<job>& j, int fd, bool write);
  void finish_entry(const std::shared_ptr<job>& j, int result);
  void end_job(const std::shared_ptr<job>& j);
  void post_job(std::shared_ptr<job> j, void (fallback_backend::*fn)(const std::shared_ptr<job>&));
  void advance(const std::shared_ptr<job>& j);
  void deliver_notif(const std::shared_ptr<job>& j);
  void cancel_next(const std::shared_ptr<job>& j);
  void cancel_job(const std::shared_ptr<job>& j);
  // Adds (removes) the job's current entry to (from) the two indexes below.
  void index(job& j);
  void unindex(job& j);

  context& ctx_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // false once destroyed
  std::unique_ptr<boost::asio::io_context> own_io_;
  boost::asio::io_context* io_;
  struct guard;
  std::unique_ptr<guard> guard_;
  std::deque<io_uring_sqe> staged_;
  std::unordered_map<job*, std::shared_ptr<job>> jobs_;
  // Every unfinished job by its current entry's user_data and by the fds that entry uses,
  // so cancel() and cancel_fd() cost the same with ten jobs or ten thousand (a server closes
  // one connection among thousands; a scan of every job made each close O(connections)).
  std::unordered_multimap<std::uint64_t, job*> by_user_data_;
  std::unordered_multimap<int, job*> by_fd_;
};

}  // namespace pagewire::runtime
