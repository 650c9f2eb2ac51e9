#pragma once

/// The whole server: N workers on N threads (one context and one SO_REUSEPORT
/// listener each), the access-log writer and the /-/stats renderer over every
/// worker's counters.
///
/// Ownership: owns workers, their threads and the log writer. Threading: start(),
/// wait() and the destructor from one (main) thread; stop() from any thread, including
/// a signal-handling thread. Errors: start() returns false with a one-line message.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <pagewire/apps/sendfile_server/access_log_writer.h>
#include <pagewire/apps/sendfile_server/options.h>
#include <pagewire/apps/sendfile_server/worker.h>

namespace pagewire::sendfile_server {

class server {
 public:
  explicit server(server_options options);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds every listener (the first one picks the port when --listen asked for 0),
  /// opens the access log and starts the worker threads.
  bool start(std::string& error);
  /// The port actually bound.
  std::uint16_t port() const { return port_; }
  /// Graceful stop: stop accepting, finish in-flight responses (bounded by
  /// --shutdown-timeout-ms), then the threads end.
  void stop();
  /// Reopens the access log's path (after logrotate renamed the file); any thread.
  void reopen_access_log();
  /// HTTPS: builds a new TLS configuration from --tls-cert/--tls-key as the files are now
  /// (a renewed certificate) and hands it to every worker. Connections accepted after it
  /// use the new certificate; open ones finish with the old. Session tickets issued before
  /// no longer resume (a new ticket key). On an error (unreadable file, key not matching the
  /// certificate) nothing changes and `error` says why. Counted in /-/stats. Call from one
  /// thread at a time (the signal thread), after start(). Plain HTTP: true, nothing done.
  bool reload_tls(std::string& error);
  /// Joins the workers and flushes the access log. Returns false when a worker failed.
  bool wait(std::string& error);

 private:
  void render_stats(std::string& out) const;

  server_options options_;
  shared_config config_;
  std::unique_ptr<access_log_writer> log_;
  std::vector<std::unique_ptr<worker>> workers_;
  std::vector<std::error_code> errors_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  std::atomic<std::uint64_t> tls_reloads_{0}, tls_reload_errors_{0};
};

}  // namespace pagewire::sendfile_server
