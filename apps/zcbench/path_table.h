#pragma once

/// Every path zcbench knows, in the order it runs and reports them. Constant
/// data, safe from any thread.

#include <span>
#include <string_view>

#include "apps/zcbench/path.h"

namespace zcbench {

/// All registered paths; the first is the copy baseline.
std::span<const path* const> all_paths();

/// The path named `name`, or null.
const path* find_path(std::string_view name);

}  // namespace zcbench
