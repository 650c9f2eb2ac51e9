#include "apps/zcbench/progress.h"

#include <cstdio>
#include <unistd.h>

namespace zcbench {

progress_line::progress_line() : enabled_(::isatty(STDERR_FILENO) == 1) {}

progress_line::~progress_line() {
  clear();
}

void progress_line::start(std::string label) {
  label_ = std::move(label);
  update(0, 1);
}

void progress_line::update(std::uint64_t done, std::uint64_t total) {
  if (!enabled_) return;
  const unsigned percent = total == 0 ? 100u : static_cast<unsigned>(done * 100 / total);
  std::fprintf(stderr, "\r\033[Kzcbench: %s %3u%%", label_.c_str(), percent);
  std::fflush(stderr);
  drawn_ = true;
}

void progress_line::clear() {
  if (!enabled_ || !drawn_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace zcbench
