#pragma once

/// `send_zc`: the raw io_uring SEND_ZC loop (plain liburing, no pagewire), pw_send_zc's limit.
/// The memory window is registered once as one fixed buffer (unregistered when the kernel
/// refuses); each message goes out as IORING_OP_SEND_ZC pieces (two where it wraps around the
/// window), and every piece waits for its result CQE and its NOTIF CQE before the next. Counts
/// io_uring_enter calls; copies nothing in user space.

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path send_zc_path;

}  // namespace zcbench
