#pragma once

/// TCP congestion control for the trial sockets (--congestion): set, checked, and the
/// system's default. Pacing algorithms matter here: bbr paces every connection (with the
/// kernel's internal pacing when the qdisc is not fq), which caps what one trial can reach
/// over loopback and veth at large messages.

#include <string>
#include <string_view>
#include <system_error>

namespace zcbench {

/// Sets congestion control `name` (TCP_CONGESTION) on TCP socket `fd`: {} or the errno
/// (ENOENT: not available; EPERM: not in net.ipv4.tcp_allowed_congestion_control for an
/// unprivileged caller).
std::error_code set_congestion(int fd, std::string_view name);

/// Empty when a TCP socket made now accepts `name`; otherwise why not, in words.
std::string congestion_unavailable(std::string_view name);

/// The system's default (net.ipv4.tcp_congestion_control), empty when unreadable.
std::string system_congestion();

}  // namespace zcbench
