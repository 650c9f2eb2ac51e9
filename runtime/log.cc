#include <atomic>
#include <cstdarg>
#include <cstdio>

#include <pagewire/runtime/log.h>

namespace pagewire::runtime {
namespace {

void to_stderr(std::string_view line) {
  std::fprintf(stderr, "pagewire: %.*s\n", static_cast<int>(line.size()), line.data());
}

std::atomic<log_handler> g_handler{nullptr};

}  // namespace

void set_log_handler(log_handler handler) noexcept {
  g_handler.store(handler, std::memory_order_release);
}

void log_line(const char* format, ...) noexcept {
  char buf[512];  // notices are short; a longer one is cut, never allocated for
  va_list args;
  va_start(args, format);
  const int n = std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  if (n < 0) return;
  const std::size_t len =
      static_cast<std::size_t>(n) < sizeof buf ? static_cast<std::size_t>(n) : sizeof buf - 1;
  const log_handler h = g_handler.load(std::memory_order_acquire);
  (h ? h : to_stderr)(std::string_view(buf, len));
}

}  // namespace pagewire::runtime
