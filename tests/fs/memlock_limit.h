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

/// A limit that refuses a 2 MiB pool arena but leaves room for rings. Without CAP_IPC_LOCK,
/// locked memory is counted per user, across every such process of the user (the two
/// registration-refused tests may run at once). Under 64 KiB, a full `make test` once
/// started page_cache_registration_refused_test's context without io_uring (the test
/// skipped); a ring charged to that shared count is the likely cause.
inline constexpr std::size_t kRingRoom = std::size_t{1} << 20;

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
