#include "apps/zcbench/options.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <sched.h>

#include "apps/zcbench/congestion.h"
#include "apps/zcbench/path_table.h"

namespace zcbench {
namespace {

constexpr std::uint64_t kMaxMessage = std::uint64_t{1} << 30;
constexpr int kMaxRepeat = 1000;
constexpr int kMaxTimeout = 86400;

std::vector<std::string_view> split_commas(std::string_view text) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = text.find(',');
    out.push_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

bool set_sizes(std::string_view value, options& o, std::string& error) {
  o.sizes.clear();
  for (auto item : split_commas(value)) {
    const auto n = parse_byte_count(item);
    if (!n || *n > kMaxMessage) {
      error = "--sizes: '" + std::string(item) + "' is not a size between 1 and 1G";
      return false;
    }
    if (std::find(o.sizes.begin(), o.sizes.end(), *n) == o.sizes.end()) o.sizes.push_back(*n);
  }
  return true;
}

bool set_paths(std::string_view value, options& o, std::string& error) {
  std::vector<std::string_view> wanted = split_commas(value);
  for (auto name : wanted) {
    if (find_path(name) == nullptr) {
      error = "--paths: unknown path '" + std::string(name) + "' (see --list-paths)";
      return false;
    }
  }
  o.paths.clear();
  for (const path* p : all_paths()) {  // table order, each once
    if (std::find(wanted.begin(), wanted.end(), p->name) != wanted.end()) {
      o.paths.emplace_back(p->name);
    }
  }
  return true;
}

bool set_transports(std::string_view value, options& o, std::string& error) {
  o.transports.clear();
  for (auto item : split_commas(value)) {
    transport t;
    if (item == "loopback") {
      t = transport::loopback;
    } else if (item == "veth") {
      t = transport::veth;
    } else {
      error = "--transport: unknown transport '" + std::string(item) + "' (loopback, veth)";
      return false;
    }
    if (std::find(o.transports.begin(), o.transports.end(), t) == o.transports.end()) {
      o.transports.push_back(t);
    }
  }
  return true;
}

// Applies one --name=value option; false with `error` set when it is bad.
bool apply(std::string_view name, std::string_view value, options& o, std::string& error) {
  if (name == "--bytes") {
    const auto n = parse_byte_count(value);
    if (!n) error = "--bytes: '" + std::string(value) + "' is not a positive byte count";
    if (n) o.bytes = *n;
    return n.has_value();
  }
  if (name == "--sizes") return set_sizes(value, o, error);
  if (name == "--paths") return set_paths(value, o, error);
  if (name == "--transport") return set_transports(value, o, error);
  if (name == "--recv") {
    const auto mode = parse_recv_mode(value);
    if (!mode) error = "--recv: '" + std::string(value) + "' is not copy or splice";
    if (mode) o.recv = *mode;
    return mode.has_value();
  }
  if (name == "--source") {
    if (value == "auto") {
      o.source = source_choice::automatic;
    } else if (value == "random") {
      o.source = source_choice::random;
    } else if (value == "text") {
      o.source = source_choice::text;
    } else {
      error = "--source: '" + std::string(value) + "' is not auto, random or text";
      return false;
    }
    return true;
  }
  if (name == "--window") {
    const auto n = parse_byte_count(value);
    if (!n || *n % 4096 != 0 || *n > (std::uint64_t{1} << 30)) {
      error = "--window: '" + std::string(value) + "' is not a multiple of 4K up to 1G";
      return false;
    }
    o.window = static_cast<std::size_t>(*n);
    return true;
  }
  if (name == "--repeat") {
    int n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > kMaxRepeat) {
      error = "--repeat: '" + std::string(value) + "' is not a count between 1 and 1000";
      return false;
    }
    o.repeat = n;
    return true;
  }
  if (name == "--timeout") {
    int n = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || end != value.data() + value.size() || n < 1 || n > kMaxTimeout) {
      error = "--timeout: '" + std::string(value) + "' is not a count of seconds between 1 and " +
              std::to_string(kMaxTimeout);
      return false;
    }
    o.timeout_s = n;
    return true;
  }
  if (name == "--pin") {
    const auto comma = value.find(',');
    int cpus[2] = {-1, -1};
    const std::string_view parts[2] = {value.substr(0, comma),
                                       comma == value.npos ? "" : value.substr(comma + 1)};
    for (int i = 0; i < 2; ++i) {
      const auto [end, ec] =
          std::from_chars(parts[i].data(), parts[i].data() + parts[i].size(), cpus[i]);
      if (ec != std::errc() || end != parts[i].data() + parts[i].size() || cpus[i] < 0 ||
          cpus[i] >= CPU_SETSIZE) {
        error = "--pin: '" + std::string(value) + "' is not SENDER_CPU,RECEIVER_CPU";
        return false;
      }
    }
    o.sender_cpu = cpus[0];
    o.receiver_cpu = cpus[1];
    return true;
  }
  if (name == "--congestion") {
    if (std::string why = congestion_unavailable(value); !why.empty()) {
      error = "--congestion: '" + std::string(value) + "': " + why;
      return false;
    }
    o.congestion = value;
    return true;
  }
  if (name == "--json" || name == "--svg" || name == "--tmpdir") {
    if (value.empty()) {
      error = std::string(name) + ": needs a file name";
      return false;
    }
    (name == "--json" ? o.json_file : name == "--svg" ? o.svg_file : o.tmpdir) = value;
    return true;
  }
  error = "unknown option '" + std::string(name) + "' (see --help)";
  return false;
}

bool takes_value(std::string_view name) {
  for (std::string_view v :
       {"--bytes", "--sizes", "--paths", "--transport", "--recv", "--source", "--repeat",
        "--window", "--timeout", "--pin", "--congestion", "--json", "--svg", "--tmpdir"}) {
    if (name == v) return true;
  }
  return false;
}

}  // namespace

std::string_view to_string(source_choice s) {
  return s == source_choice::automatic ? "auto" : s == source_choice::random ? "random" : "text";
}

std::string_view to_string(transport t) {
  return t == transport::loopback ? "loopback" : "veth";
}

std::optional<std::uint64_t> parse_byte_count(std::string_view text) {
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "m") {
    shift = 20;
  } else if (suffix == "G" || suffix == "g") {
    shift = 30;
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (n == 0 || n > (UINT64_MAX >> 1 >> shift)) return std::nullopt;
  return n << shift;
}

std::string format_byte_count(std::uint64_t n) {
  for (auto [shift, suffix] : {std::pair{30u, "G"}, std::pair{20u, "M"}, std::pair{10u, "K"}}) {
    const std::uint64_t unit = std::uint64_t{1} << shift;
    if (n >= unit && n % unit == 0) return std::to_string(n / unit) + suffix;
  }
  return std::to_string(n);
}

std::optional<options> parse_options(std::span<const char* const> args, std::string& error) {
  options o;
  bool sizes_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      o.help = true;
      continue;
    }
    if (arg == "--list-paths") {
      o.list_paths = true;
      continue;
    }
    // Test-only switches, not in --help (options.h).
    if (arg == "--test-stall-receiver") {
      o.test_stall_receiver = true;
      continue;
    }
    if (arg == "--test-slow-cleanup") {
      o.test_slow_cleanup = true;
      continue;
    }
    std::string_view name = arg, value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (takes_value(arg)) {
      if (i + 1 >= args.size()) {
        error = std::string(arg) + ": needs a value";
        return std::nullopt;
      }
      value = args[++i];
    }
    if (!apply(name, value, o, error)) return std::nullopt;
    if (name == "--sizes") sizes_given = true;
  }
  // A message larger than the whole stream would be one short message under another label.
  if (sizes_given) {
    for (const std::size_t size : o.sizes) {
      if (size > o.bytes) {
        error = "--sizes: " + format_byte_count(size) + " is larger than --bytes (" +
                format_byte_count(o.bytes) + ")";
        return std::nullopt;
      }
    }
  } else {
    std::erase_if(o.sizes, [&](std::size_t size) { return size > o.bytes; });
    if (o.sizes.empty()) {
      error = "--bytes: " + format_byte_count(o.bytes) +
              " is smaller than every default message size; give --sizes";
      return std::nullopt;
    }
  }
  if (o.paths.empty()) {
    for (const path* p : all_paths())
      o.paths.emplace_back(p->name);
  }
  if (o.tmpdir.empty()) {
    const char* env = std::getenv("TMPDIR");
    o.tmpdir = (env != nullptr && *env != '\0') ? env : "/tmp";
  }
  return o;
}

std::string usage() {
  return R"(usage: zcbench [options]
Sends N bytes over TCP by each transmit path, one after another, and reports
throughput, CPU per GB, syscalls per GB and user-space bytes copied per byte.

  --bytes N            bytes per trial (default 1G; K/M/G suffixes are x1024)
  --sizes LIST         message sizes, e.g. 4K,64K,1M,16M (the default, less those
                       above --bytes); none may be larger than --bytes
  --paths LIST         paths to run (default: all; see --list-paths)
  --transport LIST     loopback,veth (default both; veth needs root and `ip`,
                       skipped with a note otherwise)
  --recv MODE          copy (recv into a buffer, default) or splice (to /dev/null);
                       paths that transform the stream (TLS, gzip, zstd) always recv
                       into a buffer and decode, counting application and wire bytes
  --source KIND        auto (default: text-like bytes for the compressing paths,
                       pseudo-random for the rest), random or text (every path)
  --repeat N           rounds: one trial of every path and size per round; medians
                       are reported, ratios paired by round (default 3)
  --window N           the repeating window memory paths send from, a multiple of 4K
                       (default 64M: out of cache like a large file; 1M: a hot file)
  --timeout S          seconds one trial may take; past them its sockets are shut
                       down and the trial fails as timed out (default 300)
  --pin S,R            run the sending thread on CPU S and the receiving thread on
                       CPU R (default: where the scheduler puts them)
  --congestion NAME    TCP congestion control of the sending sockets, e.g. cubic
                       (default: the system's, net.ipv4.tcp_congestion_control)
  --json FILE          write every record as JSON (schema: zcbench_schema.json)
  --svg FILE           write a bar chart (GB/s and CPU s/GB per path and size)
  --tmpdir DIR         where the source file is created (default $TMPDIR or /tmp)
  --list-paths         print the paths and exit
  --help               print this and exit

GB is 10^9 bytes. Exit status: 0 all ran, 1 a trial failed, 2 bad options (or a
--json/--svg file that cannot be written, found before anything runs).
)";
}

}  // namespace zcbench
