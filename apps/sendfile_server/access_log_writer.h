#pragma once

/// The access log off the hot path: each worker thread appends combined-format lines to
/// its own buffer (one uncontended mutex, no syscall); a writer thread swaps every
/// buffer out every `flush_interval` (or sooner when one passes `high_water` bytes) and
/// writes it to the log file. Lines of one worker keep their order; lines of different
/// workers interleave by flush.
///
/// Ownership: the writer owns its buffers, the output descriptor (unless it is stdout)
/// and the thread. stop() (also run by the destructor) flushes everything appended
/// before it and joins. reopen() (SIGUSR1 in sendfile_server, as nginx) has the writer
/// thread flush what was appended so far to the file it has open, then open the path
/// again: after logrotate renamed the file, new lines go to a new one. Threading:
/// buffer(i).append() from worker i; reopen() and write_errors() from any thread;
/// everything else from the thread that created the writer. Errors: open() reports the
/// errno; a failing write() later is counted and the lines are dropped (a full disk must
/// not stop the server); a failed reopen keeps the old file, counts, and says so once on
/// stderr.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <pagewire/apps/http/access_log.h>

namespace pagewire::sendfile_server {

class access_log_writer {
 public:
  /// One worker's buffer.
  class buffer {
   public:
    /// Formats and appends one line (http::append_combined_log).
    void append(const http::access_log_entry& e);

   private:
    friend class access_log_writer;
    std::mutex mu_;
    std::string lines_;
    access_log_writer* owner_ = nullptr;
  };

  /// Opens `path` for appending ("-" = stdout) and starts the thread; nullptr with `ec`
  /// when the file cannot be opened.
  static std::unique_ptr<access_log_writer> open(const std::string& path, std::size_t workers,
                                                 std::error_code& ec);
  ~access_log_writer();
  access_log_writer(const access_log_writer&) = delete;
  access_log_writer& operator=(const access_log_writer&) = delete;

  buffer& at(std::size_t worker) { return *buffers_[worker]; }
  /// Flushes what was appended so far and stops the thread. Idempotent.
  void stop();
  /// Asks the writer thread to reopen the log's path (no-op for stdout); returns at once.
  void reopen();
  std::uint64_t write_errors() const { return write_errors_.load(std::memory_order_relaxed); }
  /// Reopens done and reopens that failed (both in /-/stats).
  std::uint64_t reopens() const { return reopens_.load(std::memory_order_relaxed); }
  std::uint64_t reopen_errors() const { return reopen_errors_.load(std::memory_order_relaxed); }

  static constexpr std::size_t kHighWater = 64 * 1024;
  static constexpr std::chrono::milliseconds kFlushInterval{100};

 private:
  access_log_writer(int fd, bool own_fd, std::size_t workers, std::string path);
  void run();
  void reopen_now();
  void flush_all(std::string& scratch);
  void wake() { cv_.notify_one(); }

  int fd_;  // replaced only by the writer thread (reopen_now)
  bool own_fd_;
  std::string path_;  // "" for stdout
  std::vector<std::unique_ptr<buffer>> buffers_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool reopen_requested_ = false;  // under mu_
  std::atomic<std::uint64_t> write_errors_{0};
  std::atomic<std::uint64_t> reopens_{0};
  std::atomic<std::uint64_t> reopen_errors_{0};
  std::thread thread_;
};

}  // namespace pagewire::sendfile_server
