#pragma once

/// `copy`: the baseline. pread() a message into a user buffer, then send() it:
/// every byte passes through user space once (copied per byte = 1.0).

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path copy_path;

}  // namespace zcbench
