// pagewire's filter stacks for zcbench: the memory window written through a
// filters::stream stack over filters::plain_transport on a net::connection (one
// runtime::context on the sending thread), one write per message, then shutdown().
//   pw_tls_aes128gcm, pw_tls_aes256gcm, pw_tls_chacha20   tls_layer (TLS 1.3, one suite)
//                      > plain; each message ends a write (write_flags::end_of_message)
//                      (raw: tls_raw_*)
//   pw_gzip1, pw_gzip6, pw_zstd1, pw_zstd3   content_filter (encode at that level) > plain;
//                      messages go with write_flags::more and the last ends the stream, so
//                      the whole stream is one gzip member / zstd frame (raw: gzip_raw1...)
// Counts: application bytes the stack accepted; io_uring_enter calls (the context's) as
// system calls; bytes copied from fs::stats (TLS gathers, the transport's receive copy).
// The receiver decodes (path::decode). The TLS handshake runs inside the timed send().

#pragma once

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path pw_tls_aes128gcm_path;
extern const path pw_tls_aes256gcm_path;
extern const path pw_tls_chacha20_path;
extern const path pw_gzip1_path;
extern const path pw_gzip6_path;
extern const path pw_zstd1_path;
extern const path pw_zstd3_path;

}  // namespace zcbench
