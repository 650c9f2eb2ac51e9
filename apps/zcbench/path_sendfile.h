#pragma once

/// `sendfile`: a sendfile(2) loop, one call per message (more after short
/// transfers). The kernel moves page-cache pages; user space copies nothing.

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path sendfile_path;

}  // namespace zcbench
