#include "apps/zcbench/host_info.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <sys/utsname.h>
#include <unistd.h>

#include "apps/zcbench/congestion.h"

namespace zcbench {

host_info read_host_info() {
  host_info h;
  utsname u{};
  if (::uname(&u) == 0) {
    h.kernel = u.release;
    h.kernel_version = u.version;
    h.machine = u.machine;
  }
  h.cores = std::max(1, static_cast<int>(::sysconf(_SC_NPROCESSORS_ONLN)));
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos)
        h.cpu_model = line.substr(line.find_first_not_of(" \t", colon + 1));
      break;
    }
  }
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  ::gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  h.date = buf;
  h.tcp_congestion = system_congestion();
  return h;
}

}  // namespace zcbench
