#pragma once

/// sendfile_server's command line, parsed and validated once into `server_options`.
/// Pure apart from the system checks in validate_options() (the root is a readable
/// directory, the certificate and key are readable files, --user names an account). Any
/// thread.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <pagewire/apps/http/coding.h>
#include <pagewire/apps/sendfile_server/privileges.h>

namespace pagewire::sendfile_server {

struct server_options {
  std::string root;                // --root DIR
  std::string host = "127.0.0.1";  // --listen HOST:PORT ("[::1]:8080" for IPv6)
  std::uint16_t port = 8080;
  std::size_t threads = 0;  // --threads N; 0: one per core (resolved by validate_options)
  std::string tls_cert;     // --tls-cert FILE (with --tls-key)
  std::string tls_key;      // --tls-key FILE
  std::vector<http::content_coding> compress;  // --compress gzip,zstd (preference order)
  std::string access_log;                      // --access-log FILE|- ("" = off, "-" = stdout)
  std::size_t cache_mb = 64;                   // --cache-mb N: user-space page cache per process
  bool stats = false;                          // --stats: serve /-/stats
  bool list_dirs = false;                      // --list-dirs
  std::chrono::milliseconds header_timeout{10'000};    // --header-timeout-ms
  std::chrono::milliseconds idle_timeout{60'000};      // --idle-timeout-ms
  std::chrono::milliseconds send_timeout{30'000};      // --send-timeout-ms
  std::chrono::milliseconds shutdown_timeout{10'000};  // --shutdown-timeout-ms
  std::size_t max_connections = 10'000;                // --max-connections (per thread)
  std::chrono::microseconds busy_poll{0};  // --busy-poll-us: runtime::context_options::busy_poll
  std::size_t notsent_lowat = 16 * 1024;   // --notsent-lowat: net::options::notsent_lowat
  std::string user;                        // --user NAME[:GROUP]
  std::optional<account> run_as;           // --user, looked up by validate_options
  bool help = false;                       // --help

  bool tls() const { return !tls_cert.empty(); }
};

/// Parses argv[1..argc). On error returns nullopt and sets `error` to one line
/// ("unknown option --x", "--threads: expected a number in 1..1024, got 'x'").
std::optional<server_options> parse_options(int argc, const char* const* argv, std::string& error);

/// Checks what needs the file system and fills defaults that depend on the machine
/// (threads = cores; root = `default_root` when --root was not given). Returns false
/// with a one-line `error` when the root is not a directory we can open, or a TLS file
/// is unreadable, or only one of --tls-cert/--tls-key was given, or --user names no account
/// or needs root and the process is not.
bool validate_options(server_options& opts, std::string_view default_root, std::string& error);

/// The --help text.
std::string_view usage();

}  // namespace pagewire::sendfile_server
