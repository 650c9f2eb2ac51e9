#include "apps/zcbench/path_table.h"

#include <array>

#include "apps/zcbench/path_copy.h"
#include "apps/zcbench/path_pagewire.h"
#include "apps/zcbench/path_send_zc.h"
#include "apps/zcbench/path_sendfile.h"
#include "apps/zcbench/path_sendmsg.h"
#include "apps/zcbench/path_splice.h"

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
