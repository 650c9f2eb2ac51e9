#pragma once

/// Runs every selected path x message size x transport `repeat` times, in rounds
/// (one trial of every path per round, each raw loop next to the paths compared with it),
/// and reduces the trials to one record each (the median of every figure, taken figure by
/// figure), with ratios to the copy baseline and to the path's raw loop, paired by round.
/// Main thread only.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "apps/zcbench/options.h"

namespace zcbench {

/// One trial's figures. GB is 10^9 bytes.
struct trial_figures {
  double seconds = 0;
  double gb_per_s = 0;
  double sender_cpu_s = 0;         ///< sending thread + threads working for it (io-wq)
  double sender_thread_cpu_s = 0;  ///< the sending thread alone
  double sender_user_cpu_s = 0;    ///< the sending thread's user CPU alone
  double receiver_cpu_s = 0;
  std::uint64_t syscalls = 0;  ///< sender's, as the path counted them
  std::uint64_t receiver_syscalls = 0;
  std::uint64_t bytes_sent = 0;      ///< as the path counted them
  std::uint64_t bytes_received = 0;  ///< application bytes, as the receiver counted them
  std::uint64_t bytes_wire = 0;      ///< bytes the receiver read off the socket
  std::uint64_t bytes_copied = 0;    ///< user-space copies, as the path counted them
  std::string raw;                   ///< the raw loop of the calls made (send_counts::raw_used)
  int round = 0;                     ///< 1..repeat: the round this trial ran in
};

struct record {
  std::string path;
  /// The raw loop compared with: path::raw, or the one every trial's calls matched instead
  /// (send_counts::raw_used).
  std::string raw;
  transport via = transport::loopback;
  recv_mode recv = recv_mode::copy;
  std::size_t message_size = 0;
  std::uint64_t bytes = 0;           ///< requested per trial (--bytes)
  std::uint64_t bytes_sent = 0;      ///< equal in every trial, == bytes
  std::uint64_t bytes_received = 0;  ///< equal in every trial, == bytes
  std::uint64_t bytes_wire = 0;      ///< the first trial's wire bytes (== bytes unless transformed)
  std::string source;                ///< "random" or "text": what the stream held
  // Medians over the trials, figure by figure.
  double seconds = 0;
  double gb_per_s = 0;
  double sender_cpu_s_per_gb = 0;
  double sender_thread_cpu_s_per_gb = 0;
  double sender_user_cpu_s_per_gb = 0;
  double receiver_cpu_s_per_gb = 0;
  double syscalls_per_gb = 0;
  double receiver_syscalls_per_gb = 0;
  double copied_per_byte = 0;
  // Ratios at the same size and transport, paired by round: the median over the rounds of
  // this path's GB/s over the other's in the same round (paired_ratio). Not the ratio of the
  // two medians: the trials of one round run within seconds of each other, so a slow spell
  // of the machine moves both sides of a pair.
  std::optional<double> ratio_to_copy;  ///< against the copy baseline
  std::optional<double> ratio_to_raw;   ///< against the raw loop (field raw)
  std::vector<trial_figures> trials;
};

/// Something that did not run: a transport (path "*") or a path refused here.
struct skip_note {
  std::string path;
  std::string transport;
  std::string reason;
};

/// A trial that failed, or whose byte counts did not match.
struct error_note {
  std::string path;
  std::string transport;
  std::size_t message_size = 0;
  std::string message;
};

struct run_report {
  std::vector<record> records;
  std::vector<skip_note> skipped;
  std::vector<error_note> errors;
};

/// Runs the whole benchmark; progress goes to stderr when it is a terminal.
/// Setup problems that stop everything (no temp file) come back as an error
/// with path "*".
run_report measure_all(const options& o);

/// The median of `values` (mean of the middle two for an even count); 0 if empty.
double median(std::vector<double> values);

/// The median over the rounds both ran in of a's GB/s over b's in that round; nullopt when
/// they share no round with b's GB/s above 0.
std::optional<double> paired_ratio(const record& a, const record& b);

/// The order in which one round runs `paths`: each raw loop followed at once by the
/// selected paths whose path::raw it is, the rest in the order given. Names must be known.
std::vector<std::string> round_order(const std::vector<std::string>& paths);

}  // namespace zcbench
