#include <condition_variable>
#include <mutex>

#include <pagewire/runtime/context_pool.h>

namespace pagewire::runtime {

context_pool::context_pool(std::size_t threads, const context_options& options)
    : contexts_(threads, nullptr) {
  std::mutex m;
  std::condition_variable cv;
  std::size_t ready = 0;
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i, &options, &m, &cv, &ready] {
      context ctx(options);
      ctx.work_started();  // idle contexts keep running until stop()
      {
        // Notify under the lock: the constructor's cv dies as soon as it returns.
        std::lock_guard<std::mutex> lock(m);
        contexts_[i] = &ctx;
        ++ready;
        cv.notify_all();
      }
      ctx.run();
      ctx.work_finished();
      std::unique_lock<std::mutex> hold(m_);
      cv_.wait(hold, [this] { return stop_done_; });
    });
  }
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return ready == threads; });
}

context_pool::~context_pool() {
  stop();
  join();
}

void context_pool::stop() noexcept {
  if (stopping_.exchange(true)) return;
  for (context* c : contexts_)
    c->stop();
  {
    std::lock_guard<std::mutex> lock(m_);
    stop_done_ = true;
  }
  cv_.notify_all();
}

void context_pool::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace pagewire::runtime
