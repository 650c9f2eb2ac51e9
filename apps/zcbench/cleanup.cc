#include "apps/zcbench/cleanup.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
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
std::atomic<bool> g_cleaning{false};  // set by the first signal; later ones do nothing
bool g_slow_for_test = false;         // --test-slow-cleanup

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

// Runs with every catchable signal blocked on its thread (sa_mask). A signal that another
// thread takes meanwhile (they do not block them) finds g_cleaning set and returns.
void on_signal(int sig) {
  if (g_cleaning.exchange(true)) return;
  if (g_slow_for_test) {
    timespec second{1, 0};
    while (::nanosleep(&second, &second) != 0 && errno == EINTR) {
    }
  }
  if (const int child = g_child.load(std::memory_order_acquire); child > 0) {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  run_kind(cleanup_kind::netns_mount);
  run_kind(cleanup_kind::file);
  run_kind(cleanup_kind::directory);
  // Blocked here until the handler returns, then the default action ends the process.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_signal_cleanup(bool slow_for_test) {
  g_slow_for_test = slow_for_test;
  struct sigaction action {};
  action.sa_handler = on_signal;
  // Stays installed (no SA_RESETHAND): a second SIGTERM (timeout(1), a process-group kill)
  // must not end the process halfway through the cleanup.
  ::sigfillset(&action.sa_mask);
  action.sa_flags = 0;
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
