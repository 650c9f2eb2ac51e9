#pragma once

/// The bytes every path sends: a temporary file of N bytes (created once per run
/// in a fresh directory under TMPDIR, page cache warm) and, when a path needs it,
/// a memory window of the same stream. The content is pseudo-random (it does not
/// compress) or text-like (HTML/JSON words, as tests/bench/filters_bench makes them;
/// gzip -6 shrinks it about 4x). The store owns the file, directory and memory and removes them on
/// destruction (and on SIGINT/SIGTERM through cleanup.h). A run killed outright (SIGKILL)
/// cannot: each run holds a flock on its directory, and the next run's create() removes
/// every zcbench-XXXXXX directory of the same user under the same parent that nobody holds
/// and that has not changed for a minute, saying so on stderr. Main thread only;
/// `view()` may then be read from any thread while the store lives.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "apps/zcbench/path.h"

namespace zcbench {

/// What the source holds.
enum class content { random, text };

class source_store {
 public:
  /// Creates `dir_parent`/zcbench-XXXXXX/source.bin of `total` bytes (the window repeated),
  /// and keeps the memory window of window_size(total, window) bytes when `with_memory`.
  /// Returns null and a one-line reason on failure.
  static std::unique_ptr<source_store> create(const std::string& dir_parent, std::uint64_t total,
                                              std::size_t window, bool with_memory, content kind,
                                              std::string& why);

  source_store(const source_store&) = delete;
  source_store& operator=(const source_store&) = delete;
  ~source_store();

  source view() const;
  const std::string& file_path() const { return file_; }

 private:
  source_store() = default;

  std::string dir_;
  std::string file_;
  int fd_ = -1;
  int lock_fd_ = -1;  // the directory, flock'ed while it lives
  std::uint64_t total_ = 0;
  std::vector<std::byte> window_;  // the stream's repeating window
  bool with_memory_ = false;
};

/// The memory window's size for `total` bytes and --window `window`: min(total, window).
std::size_t window_size(std::uint64_t total, std::size_t window);

}  // namespace zcbench
