#pragma once

/// One trial: a receiver thread and a sender thread, a fresh TCP connection
/// between them, one path sending the source once. Measures wall time (first
/// byte offered to EOF seen), CPU time (the sender's includes the threads that
/// work for it, see trial_result) and collects the counts the path and the receiver report.
/// Blocking, for at most about trial_setup::timeout_s; call from one thread (it starts and
/// joins its own two).

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>

#include "apps/zcbench/netns.h"
#include "apps/zcbench/path.h"
#include "apps/zcbench/receivers.h"

namespace zcbench {

struct trial_setup {
  const path* p = nullptr;
  source src;
  std::size_t message_size = 0;
  recv_mode recv = recv_mode::copy;  ///< for paths that decode: ignored (decoders.h)
  /// Null: loopback in the caller's namespace. Otherwise the sender joins its
  /// tx namespace and the receiver its rx namespace, each on its own thread.
  const veth_pair* veth = nullptr;
  int sender_cpu = -1;    ///< pin the sending thread to this CPU (-1: don't)
  int receiver_cpu = -1;  ///< pin the receiving thread to this CPU (-1: don't)
  /// TCP congestion control of the sending socket (options::congestion); empty: the system's.
  std::string congestion;
  /// The trial's deadline, from its start: past it a watchdog shuts the trial's sockets
  /// down (so blocking calls and io_uring operations on them return) and the trial fails
  /// with "trial timed out after N s". The only timeout: the sockets have none of their own.
  int timeout_s = 300;
  /// Test only (--test-stall-receiver): the receiver accepts, then reads nothing until the
  /// watchdog shuts its socket down.
  bool stall_receiver = false;
  /// Called about every 100 ms with the bytes received so far, on the calling thread.
  std::function<void(std::uint64_t received)> on_progress;
};

struct trial_result {
  double seconds = 0;  ///< sender's start of send() to receiver's EOF
  /// User + system CPU spent for the sender during send(): the process's CPU clock
  /// (CLOCK_PROCESS_CPUTIME_ID, every thread, exited ones included) minus the receiving and
  /// main threads' clocks over the same window; so io_uring's io-wq workers (iou-wrk-*) and
  /// any SQPOLL thread count. Never below sender_thread_cpu_s.
  double sender_cpu_s = 0;
  double sender_thread_cpu_s = 0;  ///< the sending thread alone (CLOCK_THREAD_CPUTIME_ID)
  /// The sending thread's user CPU alone (getrusage RUSAGE_THREAD; the kernel splits the
  /// thread's runtime into user and system by tick samples): the part comparable with
  /// `openssl speed`, which is user CPU encrypting.
  double sender_user_cpu_s = 0;
  double receiver_cpu_s = 0;  ///< user + system CPU of the receiving thread while receiving
  send_counts sent;
  recv_counts received;
};

enum class trial_status {
  ok,           ///< ran; check received.bytes against the source's total
  unavailable,  ///< the path's make() refused (reported as skipped)
  failed,       ///< an error on either side
};

struct trial_outcome {
  trial_status status = trial_status::ok;
  std::string message;  ///< for unavailable/failed: one line, "sender: connect: ..."
};

trial_outcome run_trial(const trial_setup& setup, trial_result& result);

}  // namespace zcbench
