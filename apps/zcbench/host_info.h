#pragma once

/// What machine a run was taken on, for the table header and the JSON.

#include <string>

namespace zcbench {

struct host_info {
  std::string kernel;          ///< uname -r
  std::string kernel_version;  ///< uname -v
  std::string machine;         ///< uname -m
  std::string cpu_model;       ///< /proc/cpuinfo "model name", empty if absent
  int cores = 0;               ///< online CPUs
  std::string date;            ///< UTC, ISO 8601 ("2024-05-01T12:00:00Z")
  std::string tcp_congestion;  ///< the system's default (net.ipv4.tcp_congestion_control)
};

/// Reads it now. Never fails; unreadable fields stay empty.
host_info read_host_info();

}  // namespace zcbench
