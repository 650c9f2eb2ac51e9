#pragma once

/// Runs N contexts on N threads, one each (one ring per thread). Each context is
/// built on its own thread, so that thread is the ring's single issuer. Work
/// reaches a context through context::post() (or its executor) from any thread.
/// run_until_stopped semantics: each thread runs its context until stop().
/// Ownership: the pool owns contexts and threads; the destructor stops and joins.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <pagewire/runtime/context.h>

namespace pagewire::runtime {

class context_pool {
 public:
  /// Starts `threads` threads, each building and running one context; returns
  /// when every context is built. Contexts keep running while idle (each holds a
  /// work count) until stop().
  context_pool(std::size_t threads, const context_options& options = {});
  ~context_pool();
  context_pool(const context_pool&) = delete;
  context_pool& operator=(const context_pool&) = delete;

  std::size_t size() const noexcept { return contexts_.size(); }
  context& at(std::size_t i) noexcept { return *contexts_[i]; }
  /// Stops every context (any thread, idempotent); join() waits for the threads.
  /// A context is destroyed on its thread after stop(); do not use at() after.
  void stop() noexcept;
  void join();

 private:
  std::vector<context*> contexts_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_done_ = false;  // threads keep their context alive until stop() returned
};

}  // namespace pagewire::runtime
