// pagewire's transmit paths for zcbench: each puts the stream on the socket through
// net::transmit_op on a runtime::context, one chain per message, and reports io_uring_enter
// calls (plus sendfile calls) as system calls and fs::stats' copied bytes.
//   pw_splice_pipe  file range -> splice_pipe (raw: splice)
//   pw_sendfile     file range -> sendfile fallback, forced per file kind (raw: sendfile)
//   pw_send_zc      registered pages -> SEND_ZC (raw: copy; loopback reports the copy, after
//                   which the connection gathers)
//   pw_gather       unregistered pages -> gathered sendmsg (raw: copy)

#pragma once

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path pw_splice_pipe_path;
extern const path pw_sendfile_path;
extern const path pw_send_zc_path;
extern const path pw_gather_path;

}  // namespace zcbench
