#include "apps/zcbench/report_json.h"

#include <cmath>
#include <cstdio>
#include <optional>

namespace zcbench {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string number(const std::optional<double>& v) {
  return v ? number(*v) : "null";
}

// Builds one JSON object: field("k", value) with values already encoded.
class object {
 public:
  explicit object(std::string indent) : indent_(std::move(indent)) {}
  object& field(std::string_view key, const std::string& encoded) {
    body_ += (body_.empty() ? "" : ",\n") + indent_ + "  " + quote(key) + ": " + encoded;
    return *this;
  }
  object& field(std::string_view key, std::uint64_t v) { return field(key, std::to_string(v)); }
  std::string str() const { return "{\n" + body_ + "\n" + indent_ + "}"; }

 private:
  std::string indent_;
  std::string body_;
};

template <typename T, typename F>
std::string array(const std::vector<T>& items, const std::string& indent, F encode) {
  if (items.empty()) return "[]";
  std::string out = "[\n";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += indent + "  " + encode(items[i]) + (i + 1 < items.size() ? ",\n" : "\n");
  }
  return out + indent + "]";
}

std::string trial_json(const trial_figures& t, const std::string& indent) {
  return object(indent)
      .field("round", static_cast<std::uint64_t>(t.round))
      .field("seconds", number(t.seconds))
      .field("gb_per_s", number(t.gb_per_s))
      .field("sender_cpu_s", number(t.sender_cpu_s))
      .field("sender_thread_cpu_s", number(t.sender_thread_cpu_s))
      .field("sender_user_cpu_s", number(t.sender_user_cpu_s))
      .field("receiver_cpu_s", number(t.receiver_cpu_s))
      .field("syscalls", t.syscalls)
      .field("receiver_syscalls", t.receiver_syscalls)
      .field("bytes_sent", t.bytes_sent)
      .field("bytes_received", t.bytes_received)
      .field("bytes_wire", t.bytes_wire)
      .field("bytes_copied", t.bytes_copied)
      .str();
}

std::string record_json(const record& r, const std::string& indent) {
  const std::string inner = indent + "  ";
  return object(indent)
      .field("path", quote(r.path))
      .field("raw", quote(r.raw))
      .field("transport", quote(to_string(r.via)))
      .field("recv", quote(to_string(r.recv)))
      .field("message_size", r.message_size)
      .field("bytes", r.bytes)
      .field("bytes_sent", r.bytes_sent)
      .field("bytes_received", r.bytes_received)
      .field("bytes_wire", r.bytes_wire)
      .field("source", quote(r.source))
      .field("repeat", r.trials.size())
      .field("seconds", number(r.seconds))
      .field("gb_per_s", number(r.gb_per_s))
      .field("sender_cpu_s_per_gb", number(r.sender_cpu_s_per_gb))
      .field("sender_thread_cpu_s_per_gb", number(r.sender_thread_cpu_s_per_gb))
      .field("sender_user_cpu_s_per_gb", number(r.sender_user_cpu_s_per_gb))
      .field("receiver_cpu_s_per_gb", number(r.receiver_cpu_s_per_gb))
      .field("syscalls_per_gb", number(r.syscalls_per_gb))
      .field("receiver_syscalls_per_gb", number(r.receiver_syscalls_per_gb))
      .field("copied_per_byte", number(r.copied_per_byte))
      .field("ratio_to_copy", number(r.ratio_to_copy))
      .field("ratio_to_raw", number(r.ratio_to_raw))
      .field("trials", array(r.trials, inner,
                             [&](const trial_figures& t) { return trial_json(t, inner + "  "); }))
      .str();
}

std::string strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i)
    out += (i ? ", " : "") + quote(items[i]);
  return out + "]";
}

std::string settings_json(const options& o) {
  std::vector<std::string> transports;
  for (transport t : o.transports)
    transports.emplace_back(to_string(t));
  std::string sizes = "[";
  for (std::size_t i = 0; i < o.sizes.size(); ++i) {
    sizes += (i ? ", " : "") + std::to_string(o.sizes[i]);
  }
  return object("  ")
      .field("bytes", o.bytes)
      .field("repeat", static_cast<std::uint64_t>(o.repeat))
      .field("window", static_cast<std::uint64_t>(o.window))
      .field("sender_cpu", std::to_string(o.sender_cpu))
      .field("receiver_cpu", std::to_string(o.receiver_cpu))
      .field("congestion", quote(o.congestion))
      .field("recv", quote(to_string(o.recv)))
      .field("source", quote(to_string(o.source)))
      .field("sizes", sizes + "]")
      .field("paths", strings(o.paths))
      .field("transports", strings(transports))
      .field("gb", "1000000000")
      .str();
}

}  // namespace

std::string format_json(const run_report& report, const options& o, const host_info& host) {
  const std::string host_json = object("  ")
                                    .field("kernel", quote(host.kernel))
                                    .field("kernel_version", quote(host.kernel_version))
                                    .field("machine", quote(host.machine))
                                    .field("cpu_model", quote(host.cpu_model))
                                    .field("cores", static_cast<std::uint64_t>(host.cores))
                                    .field("date", quote(host.date))
                                    .field("tcp_congestion", quote(host.tcp_congestion))
                                    .str();
  const auto skipped = array(report.skipped, "  ", [](const skip_note& s) {
    return object("    ")
        .field("path", quote(s.path))
        .field("transport", quote(s.transport))
        .field("reason", quote(s.reason))
        .str();
  });
  const auto errors = array(report.errors, "  ", [](const error_note& e) {
    return object("    ")
        .field("path", quote(e.path))
        .field("transport", quote(e.transport))
        .field("message_size", e.message_size)
        .field("message", quote(e.message))
        .str();
  });
  return object("")
             .field("schema", quote(kJsonSchemaId))
             .field("host", host_json)
             .field("settings", settings_json(o))
             .field("records", array(report.records, "  ",
                                     [](const record& r) { return record_json(r, "    "); }))
             .field("skipped", skipped)
             .field("errors", errors)
             .str() +
         "\n";
}

}  // namespace zcbench
