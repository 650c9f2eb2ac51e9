#pragma once

/// A throwaway TLS server identity for zcbench's TLS paths: an EC P-256 key and a
/// self-signed certificate (CN=localhost, valid one day), made in-process with OpenSSL and
/// written as PEM files into a fresh directory under TMPDIR (pagewire's tls_context loads
/// files). Made once per run on the main thread (prepare_tls_credentials), read by sender
/// threads afterwards (tls_credentials_files); the files and directory are removed at exit,
/// and by cleanup.h's signal handler. The run holds a flock on the directory meanwhile, so
/// that after a SIGKILL a later run removes it (source_store.cc's reaper; same age rule).

#include <string>

namespace zcbench {

struct tls_files {
  std::string cert_file;
  std::string key_file;
};

/// Creates the key and certificate if not done yet. Main thread only. False and a one-line
/// reason on failure.
bool prepare_tls_credentials(const std::string& dir_parent, std::string& why);

/// The files made by prepare_tls_credentials; empty names if it has not succeeded.
const tls_files& tls_credentials_files();

}  // namespace zcbench
