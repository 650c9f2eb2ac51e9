#pragma once

/// `splice`: file -> pipe -> socket splice loop, the pipe sized to the message
/// (up to pipe-max-size). SPLICE_F_MORE while more of a message follows, never on
/// a message's last chunk. User space copies nothing.

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path splice_path;

}  // namespace zcbench
