// sendfile_server: pagewire's static HTTP/1.1 file server.
// See `sendfile_server --help` and apps/sendfile_server/server.h.

#include <csignal>
#include <cstdio>
#include <pthread.h>
#include <string>
#include <sys/resource.h>

#include <pagewire/apps/sendfile_server/options.h>
#include <pagewire/apps/sendfile_server/server.h>

namespace {

constexpr const char* kDefaultRoot = "bazel-bin/apps/demo/demo_root";

int fail(const std::string& message) {
  std::fprintf(stderr, "sendfile_server: %s\n", message.c_str());
  return 2;
}

// Many keep-alive clients need many descriptors: take the hard limit (as nginx's
// worker_rlimit_nofile would be set).
void raise_nofile_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace pagewire::sendfile_server;
  std::string error;
  auto opts = parse_options(argc, argv, error);
  if (!opts) return fail(error);
  if (opts->help) {
    std::fputs(usage().data(), stdout);
    return 0;
  }
  if (!validate_options(*opts, kDefaultRoot, error)) return fail(error);

  // Signals go to a sigwait() in this thread only; workers never see them. Sends use
  // MSG_NOSIGNAL, but splice/sendfile to a reset socket may still raise SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // reopen the access log (logrotate's postrotate, as nginx)
  sigaddset(&set, SIGHUP);   // the same, and reload the certificate (as nginx's reload)
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  raise_nofile_limit();

  server srv(*opts);
  if (!srv.start(error)) return fail(error);
  const bool v6 = opts->host.find(':') != std::string::npos;  // written as in --listen: [::1]:80
  std::fprintf(stderr, "sendfile_server: serving %s on %s%s%s:%u with %zu thread(s)%s%s\n",
               opts->root.c_str(), v6 ? "[" : "", opts->host.c_str(), v6 ? "]" : "",
               static_cast<unsigned>(srv.port()), opts->threads, opts->run_as ? " as " : "",
               opts->user.c_str());
  std::fflush(stderr);

  int sig = 0;
  while (sigwait(&set, &sig) == 0 && (sig == SIGUSR1 || sig == SIGHUP)) {
    srv.reopen_access_log();
    if (sig != SIGHUP || !opts->tls()) continue;
    // A renewed certificate: connections from now on get it. A bad file keeps the old one.
    if (srv.reload_tls(error)) {
      std::fprintf(stderr, "sendfile_server: SIGHUP: reloaded %s\n", opts->tls_cert.c_str());
    } else {
      std::fprintf(stderr, "sendfile_server: SIGHUP: %s; still serving the old certificate\n",
                   error.c_str());
    }
    std::fflush(stderr);
  }
  std::fprintf(stderr, "sendfile_server: signal %d, stopping\n", sig);
  srv.stop();
  if (!srv.wait(error)) return fail(error);
  return 0;
}
