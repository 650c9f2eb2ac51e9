#include "apps/zcbench/trial.h"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <future>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include "apps/zcbench/congestion.h"
#include "apps/zcbench/decoders.h"

namespace zcbench {
namespace {

using clock = std::chrono::steady_clock;

// CPU seconds (user + system) on `clock`: CLOCK_THREAD_CPUTIME_ID, CLOCK_PROCESS_CPUTIME_ID
// (every thread of the process, exited ones included) or another thread's
// pthread_getcpuclockid clock. Nanosecond resolution (the scheduler's runtime), unlike
// getrusage's tick-sampled split. Negative when the clock cannot be read (a thread gone).
double cpu_seconds(clockid_t clock) {
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

clockid_t this_thread_clock() {
  clockid_t c = CLOCK_THREAD_CPUTIME_ID;
  if (::pthread_getcpuclockid(::pthread_self(), &c) != 0) c = CLOCK_THREAD_CPUTIME_ID;
  return c;
}

// CPU of the process and of the threads that do not work for the sender (the receiver and
// the harness's main thread), read at one instant on the sender thread.
struct cpu_sample {
  double process = 0;
  double sender_thread = 0;
  double sender_user = 0;
  double receiver = 0;
  double main = 0;
  bool others_ok = true;
  static cpu_sample take(clockid_t receiver, clockid_t main) {
    cpu_sample s;
    s.sender_thread = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    rusage ru{};
    if (::getrusage(RUSAGE_THREAD, &ru) == 0) {
      s.sender_user =
          static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6;
    }
    s.process = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
    s.receiver = cpu_seconds(receiver);
    s.main = cpu_seconds(main);
    s.others_ok = s.process >= 0 && s.receiver >= 0 && s.main >= 0;
    return s;
  }
};

std::string describe(const char* side, const char* what, std::error_code ec) {
  return std::string(side) + ": " + what + ": " + ec.message();
}

// Moves the calling thread into the network namespace `ns_fd` (when >= 0) and onto `cpu`
// (when >= 0). Empty, or why not.
std::string place_thread(const char* side, int ns_fd, int cpu) {
  if (ns_fd >= 0) {
    if (auto ec = join_netns(ns_fd)) return describe(side, "setns", ec);
  }
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (const int rc = pthread_setaffinity_np(pthread_self(), sizeof set, &set); rc != 0) {
      return describe(side, ("pin to CPU " + std::to_string(cpu)).c_str(),
                      {rc, std::system_category()});
    }
  }
  return {};
}

std::error_code last_error() {
  return {errno, std::system_category()};
}

struct listener_info {
  int fd = -1;
  clockid_t receiver_clock = CLOCK_THREAD_CPUTIME_ID;  // the receiving thread's CPU clock
  sockaddr_in address{};
  std::string error;  // non-empty: the receiver could not listen
};

struct side_result {
  trial_status status = trial_status::ok;
  std::string message;
};

class trial_run {
 public:
  trial_run(const trial_setup& setup, trial_result& result) : setup_(setup), result_(result) {}

  trial_outcome run() {
    main_clock_ = this_thread_clock();
    const auto deadline = clock::now() + std::chrono::seconds(setup_.timeout_s);
    // The receiver stays alive until the sender has taken its last CPU sample, which
    // reads the receiver's thread clock (a clock of a thread gone cannot be read).
    std::thread receiver([this] {
      receiver_side_ = receive();
      finish(receiver_done_);
      std::unique_lock lock(mu_);
      done_.wait(lock, [this] { return sender_done_; });
    });
    std::thread sender([this] {
      sender_side_ = send();
      finish(sender_done_);
    });
    {
      std::unique_lock lock(mu_);
      while (!(sender_done_ && receiver_done_)) {
        if (!timed_out_ && clock::now() >= deadline) time_out();
        auto until = clock::now() + std::chrono::milliseconds(100);
        if (!timed_out_) until = std::min(until, deadline);
        done_.wait_until(lock, until);
        if (setup_.on_progress && !(sender_done_ && receiver_done_)) {
          lock.unlock();
          setup_.on_progress(received_.load(std::memory_order_relaxed));
          lock.lock();
        }
      }
    }
    sender.join();
    receiver.join();
    result_.seconds = std::chrono::duration<double>(end_ - start_).count();
    if (timed_out_) {
      return {trial_status::failed,
              "trial timed out after " + std::to_string(setup_.timeout_s) + " s"};
    }
    for (const side_result* side : {&sender_side_, &receiver_side_}) {
      if (side->status != trial_status::ok) return {side->status, side->message};
    }
    return {};
  }

 private:
  void finish(bool& side_done) {
    {
      std::lock_guard lock(mu_);
      side_done = true;
    }
    done_.notify_all();
  }

  // The watchdog (called with mu_ held): shuts down every socket of the trial, so that what
  // waits on one (a blocking call, an io_uring operation) fails or sees EOF and returns.
  void time_out() {
    timed_out_ = true;
    for (const int fd : {listen_fd_, receive_fd_, send_fd_}) {
      if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
    }
  }

  // Publishes `fd` in `slot` for the watchdog (shut down at once when it already fired).
  void track(int& slot, int fd) {
    std::lock_guard lock(mu_);
    slot = fd;
    if (timed_out_) ::shutdown(fd, SHUT_RDWR);
  }

  // Closes the socket in `slot` under the lock, so the watchdog never shuts down a
  // descriptor number that has been reused.
  void close_tracked(int& slot) {
    std::lock_guard lock(mu_);
    if (slot >= 0) ::close(slot);
    slot = -1;
  }

  // Receiving thread: listen, publish the address, accept one, read to EOF.
  side_result receive() {
    listener_info info;
    info.receiver_clock = this_thread_clock();
    info.error = place_thread("receiver", setup_.veth ? setup_.veth->receiver_ns() : -1,
                              setup_.receiver_cpu);
    if (!info.error.empty()) {
      listener_.set_value(info);
      return {trial_status::failed, info.error};
    }
    info.fd = open_listener(info);
    if (info.fd >= 0) track(listen_fd_, info.fd);
    listener_.set_value(info);
    if (info.fd < 0) return {trial_status::failed, info.error};
    const int fd = ::accept4(info.fd, nullptr, nullptr, SOCK_CLOEXEC);
    const auto accept_ec = last_error();
    close_tracked(listen_fd_);
    if (fd < 0) {
      // The sender shuts the listener down when it gives up before connecting.
      if (sender_gave_up_.load()) return {};
      return {trial_status::failed, describe("receiver", "accept", accept_ec)};
    }
    track(receive_fd_, fd);
    if (setup_.stall_receiver) {
      // Test only: read nothing; wait for the watchdog to shut the socket down (POLLHUP).
      pollfd p{fd, 0, 0};
      while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
      }
      close_tracked(receive_fd_);
      return {trial_status::failed, "receiver: stalled on purpose (--test-stall-receiver)"};
    }
    const double cpu0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
    const auto ec = setup_.p->decode == stream_coding::none
                        ? receive_all(fd, setup_.recv, result_.received, &received_)
                        : receive_decoded(fd, setup_.p->decode, result_.received, &received_);
    end_ = clock::now();
    result_.receiver_cpu_s = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    close_tracked(receive_fd_);
    if (ec) return {trial_status::failed, describe("receiver", "receive", ec)};
    return {};
  }

  int open_listener(listener_info& info) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      info.error = describe("receiver", "socket", last_error());
      return -1;
    }
    info.address.sin_family = AF_INET;
    info.address.sin_port = 0;
    const char* host = setup_.veth != nullptr ? veth_pair::kReceiverAddress : "127.0.0.1";
    ::inet_pton(AF_INET, host, &info.address.sin_addr);
    socklen_t len = sizeof info.address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&info.address), sizeof info.address) != 0 ||
        ::listen(fd, 1) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&info.address), &len) != 0) {
      info.error = describe("receiver", "listen", last_error());
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // Sending thread: connect, build the path's sender, time one send().
  side_result send() {
    const listener_info info = listener_.get_future().get();
    if (info.fd < 0) return {};  // the receiver reports why
    std::string failure =
        place_thread("sender", setup_.veth ? setup_.veth->sender_ns() : -1, setup_.sender_cpu);
    int fd = -1;
    if (failure.empty()) fd = connect_to(info, failure);
    if (fd < 0) {
      sender_gave_up_.store(true);
      ::shutdown(info.fd, SHUT_RDWR);  // wakes the receiver's accept()
      return {trial_status::failed, failure};
    }
    std::error_code ec;
    const transfer t{fd, setup_.src, setup_.message_size};
    std::unique_ptr<sender> s = setup_.p->make(t, ec);
    if (!s) {
      start_ = clock::now();
      close_tracked(send_fd_);
      return {trial_status::unavailable, describe("sender", "setup", ec)};
    }
    const cpu_sample cpu0 = cpu_sample::take(info.receiver_clock, main_clock_);
    start_ = clock::now();
    ec = s->send(result_.sent);
    const cpu_sample cpu1 = cpu_sample::take(info.receiver_clock, main_clock_);
    account_sender_cpu(cpu0, cpu1);
    s.reset();
    close_tracked(send_fd_);
    if (ec) return {trial_status::failed, describe("sender", "send", ec)};
    return {};
  }

  // Sender CPU = the process's CPU during send() minus what the receiver and main threads
  // used meanwhile: the sending thread plus every thread working for it (io_uring's io-wq
  // workers iou-wrk-*, an SQPOLL thread), which RUSAGE_THREAD of the sender alone misses.
  // Workers that exit during the window still count (their time stays in the process's).
  void account_sender_cpu(const cpu_sample& a, const cpu_sample& b) {
    const double thread = b.sender_thread - a.sender_thread;
    result_.sender_thread_cpu_s = thread;
    result_.sender_user_cpu_s = std::max(0.0, b.sender_user - a.sender_user);
    double total = thread;
    if (a.others_ok && b.others_ok) {
      total = (b.process - a.process) - (b.receiver - a.receiver) - (b.main - a.main);
    }
    result_.sender_cpu_s = std::max(total, thread);
  }

  int connect_to(const listener_info& info, std::string& failure) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      failure = describe("sender", "socket", last_error());
      return -1;
    }
    track(send_fd_, fd);
    if (!setup_.congestion.empty()) {
      if (const std::error_code ec = set_congestion(fd, setup_.congestion)) {
        failure = describe("sender", ("congestion control " + setup_.congestion).c_str(), ec);
        close_tracked(send_fd_);
        return -1;
      }
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&info.address), sizeof info.address) != 0) {
      failure = describe("sender", "connect", last_error());
      close_tracked(send_fd_);
      return -1;
    }
    return fd;
  }

  const trial_setup& setup_;
  trial_result& result_;
  std::promise<listener_info> listener_;
  // Guards what follows up to done_: the sides' completion, the watchdog's state and the
  // sockets it shuts down (-1: none open).
  std::mutex mu_;
  bool sender_done_ = false, receiver_done_ = false, timed_out_ = false;
  int listen_fd_ = -1, receive_fd_ = -1, send_fd_ = -1;
  std::condition_variable done_;
  std::atomic<std::uint64_t> received_{0};
  std::atomic<bool> sender_gave_up_{false};
  side_result sender_side_, receiver_side_;
  clockid_t main_clock_ = CLOCK_THREAD_CPUTIME_ID;
  clock::time_point start_{}, end_{};
};

}  // namespace

trial_outcome run_trial(const trial_setup& setup, trial_result& result) {
  result = trial_result{};
  trial_run run(setup, result);
  return run.run();
}

}  // namespace zcbench
