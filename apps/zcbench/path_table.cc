#include "apps/zcbench/path_table.h"

#include <array>

#include "apps/zcbench/path_compress_raw.h"
#include "apps/zcbench/path_copy.h"
#include "apps/zcbench/path_filters.h"
#include "apps/zcbench/path_pagewire.h"
#include "apps/zcbench/path_send_zc.h"
#include "apps/zcbench/path_sendfile.h"
#include "apps/zcbench/path_sendmsg.h"
#include "apps/zcbench/path_splice.h"
#include "apps/zcbench/path_tls_raw.h"

namespace zcbench {
namespace {

// One line per path. Raw syscall loops first; pagewire's paths go after them and
// name their raw counterpart in their own `path::raw`.
const auto kPaths = std::to_array<const path*>({
    &copy_path,
    &sendfile_path,
    &splice_path,
    &send_zc_path,
    &sendmsg_path,
    &pw_splice_pipe_path,
    &pw_sendfile_path,
    &pw_send_zc_path,
    &pw_gather_path,
    // Paths that transform the stream (the receiver decodes): raw loops, then pagewire's.
    &tls_raw_aes128gcm_path,
    &tls_raw_aes256gcm_path,
    &tls_raw_chacha20_path,
    &gzip_raw1_path,
    &gzip_raw6_path,
    &zstd_raw1_path,
    &zstd_raw3_path,
    &pw_tls_aes128gcm_path,
    &pw_tls_aes256gcm_path,
    &pw_tls_chacha20_path,
    &pw_gzip1_path,
    &pw_gzip6_path,
    &pw_zstd1_path,
    &pw_zstd3_path,
});

}  // namespace

std::span<const path* const> all_paths() {
  return kPaths;
}

const path* find_path(std::string_view name) {
  for (const path* p : kPaths) {
    if (p->name == name) return p;
  }
  return nullptr;
}

}  // namespace zcbench
