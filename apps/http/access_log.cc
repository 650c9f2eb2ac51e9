#include <charconv>

#include <pagewire/apps/http/access_log.h>
#include <pagewire/apps/http/http_date.h>

namespace pagewire::http {
namespace {

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void append_escaped(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  if (s.empty()) {
    out.push_back('-');
    return;
  }
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '"' || c == '\\') {
      out.append("\\x");
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    } else {
      out.push_back(c);
    }
  }
}

void append_u64(std::string& out, std::uint64_t v, int width = 0) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  for (int n = static_cast<int>(r.ptr - buf); n < width; ++n)
    out.push_back('0');
  out.append(buf, r.ptr);
}

}  // namespace

void append_combined_log(std::string& out, const access_log_entry& e) {
  append_escaped(out, e.remote_addr);
  out.append(" - ");
  append_escaped(out, e.remote_user);
  out.append(" [");
  const civil_time c = to_civil(e.time);
  append_u64(out, c.day, 2);
  out.push_back('/');
  out.append(kMonths[c.month - 1]);
  out.push_back('/');
  append_u64(out, c.year, 4);
  out.push_back(':');
  append_u64(out, c.hour, 2);
  out.push_back(':');
  append_u64(out, c.minute, 2);
  out.push_back(':');
  append_u64(out, c.second, 2);
  out.append(" +0000] \"");
  append_escaped(out, e.request_line);
  out.append("\" ");
  append_u64(out, e.status, 3);
  out.push_back(' ');
  append_u64(out, e.bytes_sent);
  out.append(" \"");
  append_escaped(out, e.referer);
  out.append("\" \"");
  append_escaped(out, e.user_agent);
  out.append("\"\n");
}

}  // namespace pagewire::http
