#include "apps/zcbench/report_table.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <vector>

namespace zcbench {
namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string ratio(const std::optional<double>& v) {
  return v ? fixed(*v, 2) + "x" : "-";
}

// Per-GB syscall counts span 60 to 250000: keep them short.
std::string count(double v) {
  if (v >= 1e6) return fixed(v / 1e6, 2) + "M";
  if (v >= 1e4) return fixed(v / 1e3, 1) + "k";
  return fixed(v, 0);
}

constexpr std::array kHeader = {"transport",    "path",         "size",        "GB/s",
                                "snd CPU s/GB", "rcv CPU s/GB", "syscalls/GB", "copied/B",
                                "wire/B",       "x copy",       "x raw"};

std::vector<std::string> row_of(const record& r) {
  // A path compared with another loop names it: "0.97x sendmsg".
  const std::string to_raw = ratio(r.ratio_to_raw) + (r.raw == r.path ? "" : " " + r.raw);
  return {
      std::string(to_string(r.via)),
      r.path,
      format_byte_count(r.message_size),
      fixed(r.gb_per_s, 2),
      fixed(r.sender_cpu_s_per_gb, 3),
      fixed(r.receiver_cpu_s_per_gb, 3),
      count(r.syscalls_per_gb),
      fixed(r.copied_per_byte, 2),
      fixed(r.bytes > 0 ? static_cast<double>(r.bytes_wire) / static_cast<double>(r.bytes) : 0, 3),
      ratio(r.ratio_to_copy),
      to_raw};
}

}  // namespace

std::string format_table(const run_report& report, const options& o, const host_info& host) {
  std::string out =
      "zcbench: " + format_byte_count(o.bytes) + " per trial, median of " +
      std::to_string(o.repeat) + ", recv=" + std::string(to_string(o.recv)) +
      (o.sender_cpu < 0 ? std::string()
                        : ", sender on CPU " + std::to_string(o.sender_cpu) + ", receiver on CPU " +
                              std::to_string(o.receiver_cpu)) +
      ", TCP " + (o.congestion.empty() ? host.tcp_congestion + " (the system's)" : o.congestion) +
      "; kernel " + host.kernel + ", " + std::to_string(host.cores) + " cores" +
      (host.cpu_model.empty() ? "" : " (" + host.cpu_model + ")") + ", " + host.date + "\n";
  std::vector<std::vector<std::string>> rows;
  rows.emplace_back(kHeader.begin(), kHeader.end());
  for (const record& r : report.records)
    rows.push_back(row_of(r));
  std::vector<std::size_t> width(kHeader.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c)
      width[c] = std::max(width[c], row[c].size());
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    // A blank line between (transport, size) groups keeps the eye on one group.
    if (i > 1 && (rows[i][0] != rows[i - 1][0] || rows[i][2] != rows[i - 1][2])) out += "\n";
    std::string line;
    for (std::size_t c = 0; c < rows[i].size(); ++c) {
      const std::string& cell = rows[i][c];
      const std::string pad(width[c] - cell.size(), ' ');
      line += (c < 2 ? cell + pad : pad + cell) + (c + 1 < rows[i].size() ? "  " : "");
    }
    out += line + "\n";
  }
  if (report.records.empty()) out += "(no records)\n";
  for (const auto& s : report.skipped) {
    out += "skipped: " + s.path + " on " + s.transport + ": " + s.reason + "\n";
  }
  for (const auto& e : report.errors) {
    out += "error: " + e.path + " on " + e.transport + " at " + format_byte_count(e.message_size) +
           ": " + e.message + "\n";
  }
  out +=
      "GB = 10^9 bytes; snd CPU = user+system of the sending thread and the threads working "
      "for it (io-wq); rcv CPU = the receiving thread's; copied/B = user-space bytes copied per "
      "byte sent; wire/B = bytes on the wire per application byte (TLS > 1, gzip/zstd < 1 on "
      "text). Compressing paths send text-like bytes unless --source says otherwise.\n";
  return out;
}

}  // namespace zcbench
