#pragma once

/// pagewire's version, for programs that link the library and want to log it.
/// Header-only; constants are safe to read from any thread.

#include <string_view>

namespace pagewire {

inline constexpr int kVersionMajor = 0;
inline constexpr int kVersionMinor = 1;
inline constexpr int kVersionPatch = 0;

/// "MAJOR.MINOR.PATCH", built at compile time.
inline constexpr std::string_view kVersion = "0.1.0";

}  // namespace pagewire
