// Raw compression loops for zcbench, no runtime: the memory window compressed with zlib
// (gzip framing) or libzstd directly and the output send()-ed from one 256 KiB buffer as
// it fills and after each message. The stream is one gzip member / zstd frame: every
// message is fed without a flush (Z_NO_FLUSH, ZSTD_e_continue), the last one ends it
// (Z_FINISH, ZSTD_e_end), as pagewire's content_filter does with write_flags::more. One
// loop per level, the raw counterparts of pw_gzip1, pw_gzip6, pw_zstd1, pw_zstd3:
// gzip_raw1, gzip_raw6, zstd_raw1, zstd_raw3. Bytes copied: 0 (the codec produces its
// output, it copies nothing). System calls: the send() calls.

#pragma once

#include "apps/zcbench/path.h"

namespace zcbench {

extern const path gzip_raw1_path;
extern const path gzip_raw6_path;
extern const path zstd_raw1_path;
extern const path zstd_raw3_path;

}  // namespace zcbench
