#include "apps/zcbench/cleanup.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

namespace zcbench {
namespace {

constexpr int kSlots = 16;
constexpr std::size_t kPathMax = 256;

struct slot {
  std::atomic<bool> used{false};
  cleanup_kind kind = cleanup_kind::file;
  char path[kPathMax] = {};
};

slot g_slots[kSlots];
std::atomic<int> g_child{0};

void run_kind(cleanup_kind kind) {
  for (slot& s : g_slots) {
    if (!s.used.load(std::memory_order_acquire) || s.kind != kind) continue;
    if (kind == cleanup_kind::netns_mount) {
      ::umount2(s.path, MNT_DETACH);
      ::unlink(s.path);
    } else if (kind == cleanup_kind::file) {
      ::unlink(s.path);
    } else {
      ::rmdir(s.path);
    }
  }
}

void on_signal(int sig) {
  if (const int child = g_child.load(std::memory_order_acquire); child > 0) {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  run_kind(cleanup_kind::netns_mount);
  run_kind(cleanup_kind::file);
  run_kind(cleanup_kind::directory);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_signal_cleanup() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  ::sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM, SIGHUP})
    ::sigaction(sig, &action, nullptr);
}

bool register_cleanup(cleanup_kind kind, const char* path) {
  const std::size_t length = std::strlen(path);
  if (length >= kPathMax) return false;
  for (slot& s : g_slots) {
    if (s.used.load(std::memory_order_relaxed)) continue;
    s.kind = kind;
    std::memcpy(s.path, path, length + 1);
    s.used.store(true, std::memory_order_release);
    return true;
  }
  return false;
}

void forget_cleanup(const char* path) {
  for (slot& s : g_slots) {
    if (s.used.load(std::memory_order_relaxed) && std::strcmp(s.path, path) == 0) {
      s.used.store(false, std::memory_order_release);
    }
  }
}

void set_cleanup_child(int pid) {
  g_child.store(pid, std::memory_order_release);
}

}  // namespace zcbench
