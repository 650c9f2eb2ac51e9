#pragma once

/// A veth pair between two network namespaces that zcbench creates for itself
/// (`zcbench-PID-RANDOM-tx` holding 10.200.0.1/30, `zcbench-PID-RANDOM-rx` holding
/// 10.200.0.2/30), so that traffic crosses a real device driver instead of
/// loopback while never touching the host's own namespace. Needs root and
/// `ip` (iproute2). The object owns both namespaces: its destructor deletes them
/// (which deletes the veth), and SIGINT/SIGTERM do the same through cleanup.h.
/// It holds a flock on each while they live; create() first deletes any
/// `zcbench-*` namespace nobody holds (left by a run killed with SIGKILL).
/// Create and destroy on the main thread; the descriptors may be used by any
/// thread to join a namespace.

#include <memory>
#include <string>
#include <system_error>

namespace zcbench {

class veth_pair {
 public:
  /// Creates the namespaces and the veth, addresses and links up. Returns null
  /// and says why in `why_not` (one line) when it cannot; leaves nothing behind.
  static std::unique_ptr<veth_pair> create(std::string& why_not);

  veth_pair(const veth_pair&) = delete;
  veth_pair& operator=(const veth_pair&) = delete;
  ~veth_pair();

  int sender_ns() const { return sender_fd_; }      ///< O_RDONLY fd of the tx namespace
  int receiver_ns() const { return receiver_fd_; }  ///< O_RDONLY fd of the rx namespace
  static constexpr const char* kSenderAddress = "10.200.0.1";
  static constexpr const char* kReceiverAddress = "10.200.0.2";

 private:
  veth_pair() = default;
  // `ip netns add NAME`, then opens and locks it into `fd`.
  bool add_namespace(const std::string& name, int& fd, std::string& why_not);

  std::string ip_;  // path of the ip binary
  std::string names_[2];
  int sender_fd_ = -1;
  int receiver_fd_ = -1;
};

/// Moves the calling thread (only it) into the network namespace `ns_fd`.
std::error_code join_netns(int ns_fd);

}  // namespace zcbench
