#pragma once

/// `sendmsg`: the raw gather loop, pw_gather's limit. The memory window is cut into 4 KiB
/// pieces at page boundaries (the shape of pagewire's pool pages); each message goes out as
/// sendmsg() calls of up to IOV_MAX pieces, MSG_MORE while more of the message follows the call.
/// No user-space copy.

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path sendmsg_path;

}  // namespace zcbench
