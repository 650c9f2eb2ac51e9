#include <charconv>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include <pagewire/apps/sendfile_server/options.h>

namespace pagewire::sendfile_server {
namespace {

constexpr std::string_view kUsage =
    "usage: sendfile_server [--root DIR] [--listen HOST:PORT] [--threads N]\n"
    "                       [--tls-cert FILE --tls-key FILE] [--compress gzip,zstd]\n"
    "                       [--access-log FILE|-] [--cache-mb N] [--stats] [--list-dirs]\n"
    "                       [--header-timeout-ms N] [--idle-timeout-ms N] [--send-timeout-ms N]\n"
    "                       [--shutdown-timeout-ms N] [--max-connections N] [--busy-poll-us N]\n"
    "                       [--notsent-lowat BYTES] [--user NAME[:GROUP]] [--help]\n"
    "A static HTTP/1.1 file server on pagewire. Defaults: --root "
    "bazel-bin/apps/demo/demo_root,\n"
    "--listen 127.0.0.1:8080, --threads = cores, timeouts 10000/60000/30000/10000 ms.\n"
    "--cache-mb N (default 64, shared by the threads): file pages kept in user space for\n"
    "one-page bodies sent with their head and for the bytes TLS and compression read;\n"
    "0 keeps none between requests.\n"
    "--busy-poll-us N (default 0: off): each thread polls its ring for up to N us before\n"
    "sleeping; a thread under load then keeps its core busy. For threads that own a core.\n"
    "--notsent-lowat BYTES (default 16384; 0: the kernel's default): TCP_NOTSENT_LOWAT of\n"
    "each connection, the most response bytes its socket holds unsent. The thread sends the\n"
    "rest as the client takes it, where the kernel would send it as the client's ACKs come in.\n"
    "--user NAME[:GROUP] (started as root): once the port, the certificate and the log are\n"
    "open, run as NAME (its groups, or GROUP alone). The root folder, and for SIGHUP the\n"
    "certificate files and the access log's folder, must then be readable by NAME.\n"
    "Signals: SIGINT/SIGTERM stop gracefully; SIGUSR1 and SIGHUP reopen the access log;\n"
    "SIGHUP also reloads --tls-cert/--tls-key for new connections (a bad file keeps the old).\n";

template <class T>
bool parse_number(std::string_view s, T lo, T hi, T& out) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

bool parse_listen(std::string_view s, server_options& o) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view host = s.substr(0, colon);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  std::uint16_t port = 0;
  if (!parse_number<std::uint16_t>(s.substr(colon + 1), 0, 65535, port)) return false;
  o.host = std::string(host);
  o.port = port;
  return true;
}

bool parse_codings(std::string_view s, std::vector<http::content_coding>& out) {
  out.clear();
  while (true) {
    const auto comma = s.find(',');
    const auto name = s.substr(0, comma);
    http::content_coding c;
    if (name == "gzip") {
      c = http::content_coding::gzip;
    } else if (name == "zstd") {
      c = http::content_coding::zstd;
    } else {
      return false;
    }
    for (auto have : out)
      if (have == c) return false;
    out.push_back(c);
    if (comma == std::string_view::npos) return true;
    s.remove_prefix(comma + 1);
  }
}

bool parse_ms(std::string_view v, std::chrono::milliseconds& out) {
  std::int64_t ms = 0;
  if (!parse_number<std::int64_t>(v, 1, 86'400'000, ms)) return false;
  out = std::chrono::milliseconds(ms);
  return true;
}

/// Applies one valued option; false with `error` set when the value is bad.
bool apply_valued(std::string_view name, std::string_view v, server_options& o,
                  std::string& error) {
  bool ok = true;
  std::string expect;
  if (name == "--root") {
    ok = !v.empty();
    o.root = std::string(v);
    expect = "a directory";
  } else if (name == "--listen") {
    ok = parse_listen(v, o);
    expect = "HOST:PORT";
  } else if (name == "--threads") {
    ok = parse_number<std::size_t>(v, 1, 1024, o.threads);
    expect = "a number in 1..1024";
  } else if (name == "--tls-cert") {
    ok = !v.empty();
    o.tls_cert = std::string(v);
    expect = "a file";
  } else if (name == "--tls-key") {
    ok = !v.empty();
    o.tls_key = std::string(v);
    expect = "a file";
  } else if (name == "--compress") {
    ok = parse_codings(v, o.compress);
    expect = "a list of gzip,zstd";
  } else if (name == "--access-log") {
    ok = !v.empty();
    o.access_log = std::string(v);
    expect = "a file or -";
  } else if (name == "--cache-mb") {
    ok = parse_number<std::size_t>(v, 0, 1 << 20, o.cache_mb);
    expect = "a number of MiB in 0..1048576";
  } else if (name == "--header-timeout-ms") {
    ok = parse_ms(v, o.header_timeout);
    expect = "milliseconds in 1..86400000";
  } else if (name == "--idle-timeout-ms") {
    ok = parse_ms(v, o.idle_timeout);
    expect = "milliseconds in 1..86400000";
  } else if (name == "--send-timeout-ms") {
    ok = parse_ms(v, o.send_timeout);
    expect = "milliseconds in 1..86400000";
  } else if (name == "--shutdown-timeout-ms") {
    ok = parse_ms(v, o.shutdown_timeout);
    expect = "milliseconds in 1..86400000";
  } else if (name == "--max-connections") {
    ok = parse_number<std::size_t>(v, 1, 1 << 24, o.max_connections);
    expect = "a number in 1..16777216";
  } else if (name == "--busy-poll-us") {
    std::uint32_t us = 0;
    ok = parse_number<std::uint32_t>(v, 0, 1'000'000, us);
    o.busy_poll = std::chrono::microseconds(us);
    expect = "microseconds in 0..1000000";
  } else if (name == "--notsent-lowat") {
    ok = parse_number<std::size_t>(v, 0, std::size_t{1} << 30, o.notsent_lowat);
    expect = "a number of bytes in 0..1073741824";
  } else if (name == "--user") {
    o.user = std::string(v);
    return true;  // resolve_account() says what is wrong with it
  } else {
    error = "unknown option " + std::string(name);
    return false;
  }
  if (!ok) error = std::string(name) + ": expected " + expect + ", got '" + std::string(v) + "'";
  return ok;
}

bool is_valued(std::string_view name) {
  static constexpr std::string_view kValued[] = {"--root",
                                                 "--listen",
                                                 "--threads",
                                                 "--tls-cert",
                                                 "--tls-key",
                                                 "--compress",
                                                 "--access-log",
                                                 "--cache-mb",
                                                 "--header-timeout-ms",
                                                 "--idle-timeout-ms",
                                                 "--send-timeout-ms",
                                                 "--shutdown-timeout-ms",
                                                 "--max-connections",
                                                 "--busy-poll-us",
                                                 "--notsent-lowat",
                                                 "--user"};
  for (auto n : kValued)
    if (n == name) return true;
  return false;
}

bool readable_file(const std::string& path) {
  struct stat st {};
  return ::access(path.c_str(), R_OK) == 0 && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::string_view usage() {
  return kUsage;
}

std::optional<server_options> parse_options(int argc, const char* const* argv, std::string& error) {
  server_options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "--help" || name == "-h") {
      o.help = true;
      continue;
    }
    if (name == "--stats" || name == "--list-dirs") {
      if (value) {
        error = std::string(name) + " takes no value";
        return std::nullopt;
      }
      (name == "--stats" ? o.stats : o.list_dirs) = true;
      continue;
    }
    if (!is_valued(name)) {
      error =
          (arg.starts_with("-") ? "unknown option " : "unexpected argument ") + std::string(name);
      return std::nullopt;
    }
    if (!value) {
      if (i + 1 >= argc) {
        error = std::string(name) + ": missing value";
        return std::nullopt;
      }
      value = argv[++i];
    }
    if (!apply_valued(name, *value, o, error)) return std::nullopt;
  }
  return o;
}

bool validate_options(server_options& o, std::string_view default_root, std::string& error) {
  if (o.root.empty()) o.root = std::string(default_root);
  struct stat st {};
  if (::stat(o.root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    error = "--root: '" + o.root + "' is not a directory";
    return false;
  }
  const int fd = ::open(o.root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    error = "--root: cannot open '" + o.root + "'";
    return false;
  }
  ::close(fd);
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    error = "--tls-cert and --tls-key go together";
    return false;
  }
  if (!o.tls_cert.empty() && !readable_file(o.tls_cert)) {
    error = "--tls-cert: cannot read '" + o.tls_cert + "'";
    return false;
  }
  if (!o.tls_key.empty() && !readable_file(o.tls_key)) {
    error = "--tls-key: cannot read '" + o.tls_key + "'";
    return false;
  }
  if (!o.user.empty()) {
    o.run_as = resolve_account(o.user, error);
    if (!o.run_as) return false;
    if (::geteuid() != 0 && (::geteuid() != o.run_as->uid || ::getegid() != o.run_as->gid)) {
      error = "--user " + o.user + ": only a server started as root can change its user";
      return false;
    }
  }
  if (o.threads == 0) {
    const unsigned n = std::thread::hardware_concurrency();
    o.threads = n == 0 ? 1 : n;
  }
  return true;
}

}  // namespace pagewire::sendfile_server
