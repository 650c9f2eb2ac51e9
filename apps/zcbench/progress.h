#pragma once

/// The progress line on stderr ("zcbench: loopback splice 64K trial 2/3  45%"),
/// redrawn in place; silent unless stderr is a terminal. Main thread only.

#include <cstdint>
#include <string>

namespace zcbench {

class progress_line {
 public:
  progress_line();  ///< enabled iff isatty(STDERR_FILENO)
  progress_line(const progress_line&) = delete;
  progress_line& operator=(const progress_line&) = delete;
  ~progress_line();  ///< clears the line

  void start(std::string label);
  void update(std::uint64_t done, std::uint64_t total);
  void clear();
  bool enabled() const { return enabled_; }

 private:
  bool enabled_;
  bool drawn_ = false;
  std::string label_;
};

}  // namespace zcbench
