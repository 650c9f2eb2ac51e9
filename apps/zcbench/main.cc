// zcbench: sends N bytes over TCP by each transmit path, one after another, and
// reports throughput, CPU per GB, syscalls per GB and user-space bytes copied
// per byte, as a terminal table, JSON (--json) and an SVG chart (--svg).
// Run `zcbench --help` for the options.

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "apps/zcbench/cleanup.h"
#include "apps/zcbench/host_info.h"
#include "apps/zcbench/measure.h"
#include "apps/zcbench/options.h"
#include "apps/zcbench/path_table.h"
#include "apps/zcbench/report_json.h"
#include "apps/zcbench/report_svg.h"
#include "apps/zcbench/report_table.h"

namespace {

bool write_file(const std::string& name, const std::string& text) {
  std::ofstream out(name, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "zcbench: cannot write %s\n", name.c_str());
    return false;
  }
  return true;
}

// Whether `name` (--json/--svg) can be written, found before the run rather than after it:
// opens it for writing without truncating, and removes it again when it did not exist.
bool can_write(const char* option, const std::string& name) {
  struct stat st {};
  const bool existed = ::stat(name.c_str(), &st) == 0;
  const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) {
    std::fprintf(stderr, "zcbench: %s: cannot write %s: %s\n", option, name.c_str(),
                 std::strerror(errno));
    return false;
  }
  ::close(fd);
  if (!existed) ::unlink(name.c_str());
  return true;
}

void list_paths() {
  for (const zcbench::path* p : zcbench::all_paths()) {
    std::printf("%-12s raw=%-10s %s\n", std::string(p->name).c_str(), std::string(p->raw).c_str(),
                std::string(p->summary).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  const auto o = zcbench::parse_options(
      std::span<const char* const>(const_cast<const char* const*>(argv) + 1, argc - 1), error);
  if (!o) {
    std::fprintf(stderr, "zcbench: %s\n", error.c_str());
    return 2;
  }
  if (o->help) {
    std::fputs(zcbench::usage().c_str(), stdout);
    return 0;
  }
  if (o->list_paths) {
    list_paths();
    return 0;
  }
  if ((!o->json_file.empty() && !can_write("--json", o->json_file)) ||
      (!o->svg_file.empty() && !can_write("--svg", o->svg_file))) {
    return 2;
  }
  // A peer that closes early must fail a splice with EPIPE, not kill the run.
  std::signal(SIGPIPE, SIG_IGN);
  zcbench::install_signal_cleanup(o->test_slow_cleanup);

  const zcbench::host_info host = zcbench::read_host_info();
  const zcbench::run_report report = zcbench::measure_all(*o);
  std::fputs(zcbench::format_table(report, *o, host).c_str(), stdout);
  std::fflush(stdout);
  bool ok = report.errors.empty();
  if (!o->json_file.empty()) ok &= write_file(o->json_file, zcbench::format_json(report, *o, host));
  if (!o->svg_file.empty()) ok &= write_file(o->svg_file, zcbench::format_svg(report, *o, host));
  return ok ? 0 : 1;
}
