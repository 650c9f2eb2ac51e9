#pragma once

/// zcbench's command line, parsed and validated once into `options`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apps/zcbench/receivers.h"

namespace zcbench {

enum class transport { loopback, veth };

/// --source: what the stream holds. `automatic`: text for paths that compress
/// (path::compresses), random bytes for the rest.
enum class source_choice { automatic, random, text };

std::string_view to_string(source_choice s);

std::string_view to_string(transport t);

struct options {
  std::uint64_t bytes = std::uint64_t{1} << 30;  ///< per trial; --bytes, K/M/G suffixes (x1024)
  /// Message sizes, none above `bytes` (an error when given; dropped from the default).
  std::vector<std::size_t> sizes = {4 << 10, 64 << 10, 1 << 20, 16 << 20};
  std::vector<std::string> paths;  ///< names from the path table, table order; default all
  std::vector<transport> transports = {transport::loopback, transport::veth};
  recv_mode recv = recv_mode::copy;
  source_choice source = source_choice::automatic;  ///< --source auto|random|text
  int repeat = 3;  ///< trials per path, size and transport; the median is reported
  /// --window: bytes of the repeating memory window the memory paths send from (the file
  /// repeats it too); a multiple of 4 KiB, at most 1G. 64 MiB: larger than the CPU caches,
  /// like a large file; 1 MiB: a hot file that stays in cache, like `openssl speed`'s buffer.
  std::size_t window = std::size_t{64} << 20;
  /// --pin S,R: the sending thread on CPU S, the receiving thread on CPU R, so that every
  /// path's trials run with the same placement (unpinned, the scheduler's choice of cores
  /// swings a trial's CPU per GB by up to 4x at 1 MiB messages). -1: not pinned.
  int sender_cpu = -1;
  int receiver_cpu = -1;
  /// --congestion NAME: the TCP congestion control of every trial's sending socket
  /// (TCP_CONGESTION), checked when parsed; empty: the system's
  /// (net.ipv4.tcp_congestion_control). Pacing ones (bbr without an fq qdisc) cap what a
  /// trial can reach at large messages.
  std::string congestion;
  /// --timeout S: a trial's deadline in seconds (trial_setup::timeout_s).
  int timeout_s = 300;
  std::string json_file;    ///< --json FILE, empty: none
  std::string svg_file;     ///< --svg FILE, empty: none
  std::string tmpdir;       ///< where the source file goes: --tmpdir, else $TMPDIR, else /tmp
  bool help = false;        ///< --help: print usage, run nothing
  bool list_paths = false;  ///< --list-paths: print the path table, run nothing
  /// Test-only switches, not in --help. --test-stall-receiver: every trial's receiver reads
  /// nothing (so only the --timeout watchdog ends the trial). --test-slow-cleanup: the
  /// signal handler sleeps 1 s before cleaning up (a slow cleanup, for signals during it).
  bool test_stall_receiver = false;
  bool test_slow_cleanup = false;
};

/// Parses argv[1..]. On a bad option returns nullopt and sets `error` to one line
/// (no trailing newline) naming the option and what is wrong.
std::optional<options> parse_options(std::span<const char* const> args, std::string& error);

/// The --help text.
std::string usage();

/// "4096" -> 4096, "64K" -> 65536, "1M", "1G" (binary multiples); nullopt if malformed,
/// zero, or overflowing.
std::optional<std::uint64_t> parse_byte_count(std::string_view text);

/// 4096 -> "4K", 1048576 -> "1M", 1000 -> "1000".
std::string format_byte_count(std::uint64_t n);

}  // namespace zcbench
