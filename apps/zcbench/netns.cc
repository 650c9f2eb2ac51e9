#include "apps/zcbench/netns.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <initializer_list>
#include <random>
#include <sched.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "apps/zcbench/cleanup.h"

extern char** environ;

namespace zcbench {
namespace {

constexpr const char* kNetnsDir = "/run/netns/";
constexpr const char* kNamePrefix = "zcbench-";
// Held while a run creates and locks its namespaces, and while a run looks for stale ones,
// so that no run takes another's half-made pair for a dead one.
constexpr const char* kCreationLock = "/run/zcbench.lock";

std::string find_ip() {
  for (const char* candidate : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

// Runs `ip ARGS...`; on failure returns false and puts the first line of its
// stderr (or the reason it did not run) in `why`.
bool run_ip(const std::string& ip, std::initializer_list<std::string> args, std::string& why) {
  std::vector<std::string> words{ip};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(words.size() + 1);
  for (auto& w : words)
    argv.push_back(w.data());
  argv.push_back(nullptr);

  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) {
    why = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, ip.c_str(), &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (rc == 0) set_cleanup_child(pid);  // a signal now waits for ip before cleaning up
  ::close(err[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = ::read(err[0], buf, sizeof buf)) > 0;)
    text.append(buf, static_cast<size_t>(n));
  ::close(err[0]);
  if (rc != 0) {
    why = "cannot run " + ip + ": " + std::strerror(rc);
    return false;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  set_cleanup_child(0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  std::string command;
  for (std::size_t i = 1; i < words.size(); ++i)
    command += (i > 1 ? " " : "") + words[i];
  text = text.substr(0, text.find('\n'));
  why = "`ip " + command + "` failed" + (text.empty() ? "" : ": " + text);
  return false;
}

void delete_namespace(const std::string& ip, const std::string& name) {
  std::string why;
  if (!run_ip(ip, {"netns", "del", name}, why)) {
    // Fall back to what `ip netns del` does itself.
    const std::string mount = kNetnsDir + name;
    ::umount2(mount.c_str(), MNT_DETACH);
    ::unlink(mount.c_str());
  }
}

// An exclusive flock on `path`, blocking; -1 when the file cannot be opened.
int lock_file(const char* path) {
  const int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
  }
  return fd;
}

// Deletes the namespaces of zcbench runs that died without cleaning up (SIGKILL, a test
// runner's timeout): a live run holds a flock on each of its namespaces until it deletes
// them, so a namespace this run can lock has no owner left.
void reap_stale_namespaces(const std::string& ip) {
  DIR* dir = ::opendir(kNetnsDir);
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name.rfind(kNamePrefix, 0) != 0) continue;
    const int fd = ::open((kNetnsDir + name).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) stale.push_back(name);
    ::close(fd);
  }
  ::closedir(dir);
  for (const std::string& name : stale) {
    std::fprintf(stderr, "zcbench: removing network namespace %s left by an earlier run\n",
                 name.c_str());
    delete_namespace(ip, name);
  }
}

// PID and 32 random bits: a PID alone repeats across PID namespaces (each test sandbox
// starts its own), and a name left by a killed run must not block the next.
std::string unique_base() {
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", std::random_device{}());
  return kNamePrefix + std::to_string(::getpid()) + "-" + suffix;
}

}  // namespace

bool veth_pair::add_namespace(const std::string& name, int& fd, std::string& why_not) {
  // Register before creating, so a signal in between still removes it.
  const std::string mount = kNetnsDir + name;
  register_cleanup(cleanup_kind::netns_mount, mount.c_str());
  if (!run_ip(ip_, {"netns", "add", name}, why_not)) {
    forget_cleanup(mount.c_str());
    return false;
  }
  for (auto& slot : names_) {
    if (slot.empty()) {
      slot = name;
      break;
    }
  }
  // Open and lock it: the lock says "in use" to other runs until this one deletes it.
  fd = ::open(mount.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    why_not = "open/flock " + mount + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

std::unique_ptr<veth_pair> veth_pair::create(std::string& why_not) {
  if (::geteuid() != 0) {
    why_not = "not root (creating network namespaces needs CAP_SYS_ADMIN)";
    return nullptr;
  }
  std::unique_ptr<veth_pair> v(new veth_pair);
  v->ip_ = find_ip();
  if (v->ip_.empty()) {
    why_not = "no `ip` binary (iproute2) found";
    return nullptr;
  }
  const int creating = lock_file(kCreationLock);  // until ours exist and are locked
  reap_stale_namespaces(v->ip_);
  const std::string base = unique_base();
  const std::string tx = base + "-tx", rx = base + "-rx";
  const bool added = v->add_namespace(tx, v->sender_fd_, why_not) &&
                     v->add_namespace(rx, v->receiver_fd_, why_not);
  if (creating >= 0) ::close(creating);
  if (!added) return nullptr;
  const std::string& ip = v->ip_;
  const bool ok =
      run_ip(ip,
             {"-n", tx, "link", "add", "zcb0", "type", "veth", "peer", "name", "zcb1", "netns", rx},
             why_not) &&
      run_ip(ip, {"-n", tx, "addr", "add", std::string(kSenderAddress) + "/30", "dev", "zcb0"},
             why_not) &&
      run_ip(ip, {"-n", rx, "addr", "add", std::string(kReceiverAddress) + "/30", "dev", "zcb1"},
             why_not) &&
      run_ip(ip, {"-n", tx, "link", "set", "zcb0", "up"}, why_not) &&
      run_ip(ip, {"-n", rx, "link", "set", "zcb1", "up"}, why_not);
  if (!ok) return nullptr;
  return v;
}

veth_pair::~veth_pair() {
  if (sender_fd_ >= 0) ::close(sender_fd_);
  if (receiver_fd_ >= 0) ::close(receiver_fd_);
  for (const auto& name : names_) {
    if (name.empty()) continue;
    delete_namespace(ip_, name);
    forget_cleanup((kNetnsDir + name).c_str());
  }
}

std::error_code join_netns(int ns_fd) {
  if (::setns(ns_fd, CLONE_NEWNET) != 0) return {errno, std::system_category()};
  return {};
}

}  // namespace zcbench
