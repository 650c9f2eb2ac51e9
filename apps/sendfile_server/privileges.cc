#include <cerrno>
#include <cstring>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#include <vector>

#include <pagewire/apps/sendfile_server/privileges.h>

namespace pagewire::sendfile_server {
namespace {

// The *_r lookups want a buffer; ERANGE asks for a bigger one.
template <class Lookup, class Entry>
bool look_up(Lookup lookup, Entry& entry, std::vector<char>& buf) {
  buf.resize(16 << 10);
  for (;;) {
    Entry* found = nullptr;
    const int rc = lookup(&entry, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (std::size_t{1} << 24)) {
      buf.resize(buf.size() * 2);
      continue;
    }
    return rc == 0 && found != nullptr;
  }
}

bool failed(std::string& error, const account& who, const char* what) {
  const int err = errno;  // before building the string allocates
  error = "--user " + who.user + ": " + what + ": " + std::strerror(err);
  return false;
}

}  // namespace

std::optional<account> resolve_account(std::string_view spec, std::string& error) {
  const auto colon = spec.find(':');
  const std::string user_name(spec.substr(0, colon));
  const std::string group_name(colon == std::string_view::npos ? "" : spec.substr(colon + 1));
  if (user_name.empty() || (colon != std::string_view::npos && group_name.empty())) {
    error = "--user: expected NAME or NAME:GROUP, got '" + std::string(spec) + "'";
    return std::nullopt;
  }
  account who;
  who.user = user_name;
  std::vector<char> buf;
  passwd pw{};
  const auto by_user = [&](passwd* e, char* b, std::size_t n, passwd** out) {
    return ::getpwnam_r(user_name.c_str(), e, b, n, out);
  };
  if (!look_up(by_user, pw, buf)) {
    error = "--user: no user '" + user_name + "'";
    return std::nullopt;
  }
  who.uid = pw.pw_uid;
  who.gid = pw.pw_gid;
  if (!group_name.empty()) {
    group gr{};
    const auto by_group = [&](group* e, char* b, std::size_t n, group** out) {
      return ::getgrnam_r(group_name.c_str(), e, b, n, out);
    };
    if (!look_up(by_group, gr, buf)) {
      error = "--user: no group '" + group_name + "'";
      return std::nullopt;
    }
    who.gid = gr.gr_gid;
    who.own_groups = false;
  }
  return who;
}

bool drop_privileges(const account& who, std::string& error) {
  if (::getuid() == who.uid && ::geteuid() == who.uid && ::getgid() == who.gid &&
      ::getegid() == who.gid) {
    return true;
  }
  // Groups first, while still root; the user id last, since it takes the right to change them.
  const int groups =
      who.own_groups ? ::initgroups(who.user.c_str(), who.gid) : ::setgroups(1, &who.gid);
  if (groups != 0) return failed(error, who, "setting the supplementary groups");
  if (::setresgid(who.gid, who.gid, who.gid) != 0) return failed(error, who, "setresgid");
  if (::setresuid(who.uid, who.uid, who.uid) != 0) return failed(error, who, "setresuid");
  if (who.uid != 0 && (::setuid(0) == 0 || ::seteuid(0) == 0)) {
    error = "--user " + who.user + ": root could still be regained";
    return false;
  }
  return true;
}

}  // namespace pagewire::sendfile_server
