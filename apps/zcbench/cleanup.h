#pragma once

/// Last-resort cleanup of what zcbench leaves on the host (network namespaces,
/// the temporary source file and its directory) when SIGINT, SIGTERM or SIGHUP
/// ends the run. Owners register a path when they create the thing and forget it
/// when their destructor has removed it; the normal path never needs this.
/// The handler uses only async-signal-safe calls (waitpid, umount2, unlink, rmdir), then
/// re-raises the signal with its default action. It runs once: every catchable signal is
/// blocked on its thread while it runs, and one of the three signals arriving meanwhile
/// (on another thread) does nothing, so a second SIGTERM cannot cut the cleanup short. Registration
/// is not thread-safe: call from the main thread only. At most 16 entries, 255 bytes each.

namespace zcbench {

enum class cleanup_kind {
  netns_mount,  ///< /run/netns/NAME: umount2(MNT_DETACH) + unlink, as `ip netns del` does
  file,         ///< unlink
  directory,    ///< rmdir (registered before its files, removed after them)
};

/// Installs the handler for SIGINT, SIGTERM and SIGHUP. Idempotent. `slow_for_test`
/// (--test-slow-cleanup): the handler sleeps 1 s before cleaning up.
void install_signal_cleanup(bool slow_for_test = false);

/// Remembers `path` for the handler. Returns false when the table is full or the
/// path too long (the thing is then only cleaned up on the normal path).
bool register_cleanup(cleanup_kind kind, const char* path);

/// Forgets `path` (after its owner removed it).
void forget_cleanup(const char* path);

/// The helper process (`ip netns add ...`) that may be creating a registered thing right
/// now, or 0. The handler waits for it (waitpid) before cleaning up: a namespace that
/// `ip` finished creating after the handler ran would otherwise be left behind.
void set_cleanup_child(int pid);

}  // namespace zcbench
