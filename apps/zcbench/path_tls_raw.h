// Raw TLS loops for zcbench, no runtime: OpenSSL server side over the blocking socket
// (socket BIO), the handshake then one SSL_write() per message piece of the memory window,
// then close_notify and SHUT_WR. TLS 1.3 with one suite each, 16 KiB records (OpenSSL's
// default), no session tickets (as pagewire's tls_context). The raw counterparts of
// pw_tls_*: tls_raw_aes128gcm, tls_raw_aes256gcm, tls_raw_chacha20. System calls are the
// socket BIO's writes (and the handshake's reads); bytes copied: 0 (encryption produces
// its output, it copies nothing).

#pragma once

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path tls_raw_aes128gcm_path;
extern const path tls_raw_aes256gcm_path;
extern const path tls_raw_chacha20_path;

}  // namespace zcbench
