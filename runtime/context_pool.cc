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
        std::lock_guard<std::mutex> lock(m);
        contexts_[i] = &ctx;
        ++ready;
      }
      cv.notify_all();
      ctx.run();
      ctx.work_finished();
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
  for (context* c : contexts_)
    c->stop();
}

void context_pool::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace pagewire::runtime
