#pragma once

/// --user NAME[:GROUP]: the account the server runs as once it holds what only root may take
/// (a port below 1024, a certificate key readable by root alone, a log in a root-owned folder).
///
/// resolve_account() looks the names up when the options are checked, so a wrong name fails
/// before anything is bound. drop_privileges() runs in server::start after the listeners, the
/// TLS configuration and the access log are open and before any worker thread starts: it sets
/// the supplementary groups (NAME's memberships, or GROUP alone when one is given), then the
/// real, effective and saved group and user ids, and then checks that root cannot be regained.
/// What opens files later does so as the account: the workers (the root folder, from its path),
/// a SIGHUP's reload of --tls-cert/--tls-key, the access log's reopening.
///
/// Threading: glibc applies each change to every thread of the process. Errors: false with one
/// line in `error`; the caller exits, never serving with the credentials half changed.

#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace pagewire::sendfile_server {

struct account {
  std::string user;  ///< NAME, as given
  uid_t uid = 0;
  gid_t gid = 0;           ///< GROUP's id, or NAME's primary group
  bool own_groups = true;  ///< supplementary groups: NAME's memberships (false: gid alone)
};

/// Parses "NAME" or "NAME:GROUP" and looks both up in the system's databases. nullopt with a
/// one-line `error` ("--user: no user 'x'") when one is missing or the spec is malformed.
std::optional<account> resolve_account(std::string_view spec, std::string& error);

/// Becomes `who` for good (see the file comment). Nothing to do when the process already runs
/// as who.uid and who.gid. Needs root (CAP_SETUID and CAP_SETGID) otherwise.
bool drop_privileges(const account& who, std::string& error);

}  // namespace pagewire::sendfile_server
