#pragma once

/// std::error_code values in the system category for per-message code paths.
///
/// libstdc++'s std::error_code default constructor and clear() call std::system_category(),
/// an out-of-line function in libstdc++.so: on a path that runs once per message that is a
/// far call through the PLT and one more code page to walk to after every system call (the
/// TLB is empty after one on machines without PCID). These helpers fetch the category once
/// and build error codes inline.
///
/// Threading: any thread. The category reference is initialised on first use (a function
/// local static), so these are safe during static initialisation too.

#include <system_error>

namespace pagewire::runtime {

/// std::system_category(), looked up once per process.
inline const std::error_category& system_category() noexcept {
  static const std::error_category& category = std::system_category();
  return category;
}

/// `err` (an errno value; 0 for success) in the system category.
inline std::error_code sys_error(int err) noexcept {
  return {err, system_category()};
}

/// Success: equal to std::error_code{}.
inline std::error_code no_error() noexcept {
  return sys_error(0);
}

}  // namespace pagewire::runtime
