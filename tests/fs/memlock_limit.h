#pragma once

/// Test helper for the registration-refused tests (each its own binary, since this changes
/// the whole process): makes the kernel account pinned memory as it does for an ordinary
/// user, so io_uring buffer registration beyond `bytes` is refused.

#include <cstddef>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace pagewire::fs::testing {

/// Lowers RLIMIT_MEMLOCK's soft limit to `bytes` and drops CAP_IPC_LOCK from the effective
/// set (root bypasses the limit through it).
inline ::testing::AssertionResult limit_memlock(std::size_t bytes) {
  rlimit lim{0, 0};
  if (::getrlimit(RLIMIT_MEMLOCK, &lim) != 0) return ::testing::AssertionFailure() << "getrlimit";
  lim.rlim_cur = bytes;
  if (::setrlimit(RLIMIT_MEMLOCK, &lim) != 0) return ::testing::AssertionFailure() << "setrlimit";
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) != 0) return ::testing::AssertionFailure() << "capget";
  data[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
  if (::syscall(SYS_capset, &hdr, data) != 0) return ::testing::AssertionFailure() << "capset";
  return ::testing::AssertionSuccess();
}

}  // namespace pagewire::fs::testing
