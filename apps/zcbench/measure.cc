#include "apps/zcbench/measure.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <set>

#include "apps/zcbench/netns.h"
#include "apps/zcbench/path_table.h"
#include "apps/zcbench/progress.h"
#include "apps/zcbench/source_store.h"
#include "apps/zcbench/tls_credentials.h"
#include "apps/zcbench/trial.h"

namespace zcbench {
namespace {

constexpr double kGB = 1e9;

trial_figures figures_of(const trial_result& r, int round) {
  trial_figures f;
  f.seconds = r.seconds;
  f.gb_per_s = r.seconds > 0 ? static_cast<double>(r.received.bytes) / kGB / r.seconds : 0;
  f.sender_cpu_s = r.sender_cpu_s;
  f.sender_thread_cpu_s = r.sender_thread_cpu_s;
  f.sender_user_cpu_s = r.sender_user_cpu_s;
  f.receiver_cpu_s = r.receiver_cpu_s;
  f.syscalls = r.sent.syscalls;
  f.receiver_syscalls = r.received.syscalls;
  f.bytes_sent = r.sent.bytes;
  f.bytes_received = r.received.bytes;
  f.bytes_wire = r.received.wire_bytes;
  f.bytes_copied = r.sent.bytes_copied;
  f.raw = r.sent.raw_used;
  f.round = round;
  return f;
}

template <typename F>
double median_of(const std::vector<trial_figures>& trials, F figure) {
  std::vector<double> values;
  values.reserve(trials.size());
  for (const auto& t : trials)
    values.push_back(figure(t));
  return median(std::move(values));
}

content content_of(const path& p, const options& o) {
  if (o.source == source_choice::automatic) return p.compresses ? content::text : content::random;
  return o.source == source_choice::text ? content::text : content::random;
}

record reduce(const path& p, const options& o, transport via, std::size_t size,
              std::vector<trial_figures> trials) {
  record r;
  r.path = p.name;
  r.raw = p.raw;
  const auto used = trials.front().raw;
  if (!used.empty() &&
      std::all_of(trials.begin(), trials.end(), [&](const auto& t) { return t.raw == used; }))
    r.raw = used;
  r.via = via;
  r.recv = p.decode == stream_coding::none ? o.recv : recv_mode::copy;
  r.source = content_of(p, o) == content::text ? "text" : "random";
  r.message_size = size;
  r.bytes = o.bytes;
  r.bytes_sent = trials.front().bytes_sent;
  r.bytes_received = trials.front().bytes_received;
  r.bytes_wire = trials.front().bytes_wire;
  const double gb = static_cast<double>(o.bytes) / kGB;
  const double bytes = static_cast<double>(o.bytes);
  r.seconds = median_of(trials, [](auto& t) { return t.seconds; });
  r.gb_per_s = median_of(trials, [](auto& t) { return t.gb_per_s; });
  r.sender_cpu_s_per_gb = median_of(trials, [&](auto& t) { return t.sender_cpu_s / gb; });
  r.sender_thread_cpu_s_per_gb =
      median_of(trials, [&](auto& t) { return t.sender_thread_cpu_s / gb; });
  r.sender_user_cpu_s_per_gb = median_of(trials, [&](auto& t) { return t.sender_user_cpu_s / gb; });
  r.receiver_cpu_s_per_gb = median_of(trials, [&](auto& t) { return t.receiver_cpu_s / gb; });
  r.syscalls_per_gb = median_of(trials, [&](auto& t) { return t.syscalls / gb; });
  r.receiver_syscalls_per_gb = median_of(trials, [&](auto& t) { return t.receiver_syscalls / gb; });
  r.copied_per_byte = median_of(trials, [&](auto& t) { return t.bytes_copied / bytes; });
  r.trials = std::move(trials);
  return r;
}

// Ratios within one (transport, size) group of records.
void add_ratios(std::vector<record>& records, std::size_t first) {
  const auto find = [&](const std::string& name) -> const record* {
    for (std::size_t i = first; i < records.size(); ++i) {
      if (records[i].path == name) return &records[i];
    }
    return nullptr;
  };
  const record* copy = find("copy");
  for (std::size_t i = first; i < records.size(); ++i) {
    record& r = records[i];
    if (copy != nullptr) r.ratio_to_copy = paired_ratio(r, *copy);
    const record* raw = find(r.raw);
    if (raw != nullptr) r.ratio_to_raw = paired_ratio(r, *raw);
  }
}

class runner {
 public:
  runner(const options& o, std::map<content, source> sources, run_report& report)
      : o_(o), sources_(std::move(sources)), report_(report) {}

  void run_transport(transport via, const veth_pair* veth) {
    for (std::size_t size : o_.sizes)
      run_size(via, veth, size);
  }

 private:
  // All paths at one size, in rounds (trial 1 of every path, then trial 2...) so that a
  // slow spell on the machine spreads over the paths instead of hitting one. Within a round
  // each raw loop runs next to the paths compared with it, and every other round runs
  // backwards, so neither side of a pair always goes first.
  void run_size(transport via, const veth_pair* veth, std::size_t size) {
    std::map<std::string, std::vector<trial_figures>> trials;
    std::set<std::string> dropped;
    const std::vector<std::string> forward = round_order(o_.paths);
    for (int rep = 1; rep <= o_.repeat; ++rep) {
      std::vector<std::string> order = forward;
      if (rep % 2 == 0) std::reverse(order.begin(), order.end());
      for (const std::string& name : order) {
        if (dropped.count(name) != 0 || unavailable_.count({name, via}) != 0) continue;
        trial_figures f;
        if (run_one(*find_path(name), via, veth, size, rep, f)) {
          trials[name].push_back(f);
        } else {
          dropped.insert(name);
        }
      }
    }
    const std::size_t first = report_.records.size();
    for (const std::string& name : o_.paths) {
      auto it = trials.find(name);
      if (dropped.count(name) != 0 || it == trials.end()) continue;
      report_.records.push_back(reduce(*find_path(name), o_, via, size, std::move(it->second)));
    }
    add_ratios(report_.records, first);
  }

  bool run_one(const path& p, transport via, const veth_pair* veth, std::size_t size, int rep,
               trial_figures& out) {
    const std::string where = std::string(to_string(via));
    progress_.start(where + " " + std::string(p.name) + " " + format_byte_count(size) + " trial " +
                    std::to_string(rep) + "/" + std::to_string(o_.repeat));
    const source& src = sources_.at(content_of(p, o_));
    trial_setup setup;
    setup.p = &p;
    setup.src = src;
    setup.message_size = size;
    setup.recv = o_.recv;
    setup.veth = veth;
    setup.sender_cpu = o_.sender_cpu;
    setup.receiver_cpu = o_.receiver_cpu;
    setup.congestion = o_.congestion;
    setup.timeout_s = o_.timeout_s;
    setup.stall_receiver = o_.test_stall_receiver;
    setup.on_progress = [&](std::uint64_t received) { progress_.update(received, src.total); };
    trial_result result;
    const trial_outcome outcome = run_trial(setup, result);
    progress_.clear();
    if (outcome.status == trial_status::unavailable) {
      unavailable_.insert({std::string(p.name), via});
      report_.skipped.push_back({std::string(p.name), where, outcome.message});
      std::fprintf(stderr, "zcbench: %s skipped on %s: %s\n", std::string(p.name).c_str(),
                   where.c_str(), outcome.message.c_str());
      return false;
    }
    std::string failure = outcome.message;
    if (outcome.status == trial_status::ok &&
        (result.sent.bytes != src.total || result.received.bytes != src.total)) {
      failure = "byte counts differ: sent " + std::to_string(result.sent.bytes) + ", received " +
                std::to_string(result.received.bytes) + ", expected " + std::to_string(src.total);
    }
    if (!failure.empty()) {
      report_.errors.push_back({std::string(p.name), where, size, failure});
      std::fprintf(stderr, "zcbench: %s %s %s failed: %s\n", where.c_str(),
                   std::string(p.name).c_str(), format_byte_count(size).c_str(), failure.c_str());
      return false;
    }
    out = figures_of(result, rep);
    return true;
  }

  const options& o_;
  std::map<content, source> sources_;
  run_report& report_;
  progress_line progress_;
  std::set<std::pair<std::string, transport>> unavailable_;
};

// The sources the selected paths need, each with a memory window when one of its paths
// reads memory.
std::map<content, bool> sources_needed(const options& o) {
  std::map<content, bool> need;
  for (const std::string& name : o.paths) {
    const path& p = *find_path(name);
    need[content_of(p, o)] |= p.reads == source_kind::memory;
  }
  return need;
}

bool any_tls(const options& o) {
  return std::any_of(o.paths.begin(), o.paths.end(), [](const std::string& name) {
    return find_path(name)->decode == stream_coding::tls;
  });
}

}  // namespace

std::optional<double> paired_ratio(const record& a, const record& b) {
  std::vector<double> ratios;
  for (const trial_figures& t : a.trials) {
    for (const trial_figures& u : b.trials) {
      if (t.round == u.round && u.gb_per_s > 0) ratios.push_back(t.gb_per_s / u.gb_per_s);
    }
  }
  if (ratios.empty()) return std::nullopt;
  return median(std::move(ratios));
}

std::vector<std::string> round_order(const std::vector<std::string>& paths) {
  const auto selected = [&](std::string_view name) {
    return std::find(paths.begin(), paths.end(), name) != paths.end();
  };
  std::vector<std::string> order;
  for (const std::string& name : paths) {
    const path& p = *find_path(name);
    if (p.raw != p.name && selected(p.raw)) continue;  // runs right after its raw loop
    order.push_back(name);
    for (const std::string& follower : paths) {
      const path& f = *find_path(follower);
      if (f.raw == name && f.name != name) order.push_back(follower);
    }
  }
  return order;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 == 1 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

run_report measure_all(const options& o) {
  run_report report;
  std::string why;
  std::vector<std::unique_ptr<source_store>> stores;
  std::map<content, source> sources;
  for (const auto& [kind, with_memory] : sources_needed(o)) {
    stores.push_back(source_store::create(o.tmpdir, o.bytes, o.window, with_memory, kind, why));
    if (!stores.back()) {
      report.errors.push_back({"*", "*", 0, why});
      std::fprintf(stderr, "zcbench: %s\n", why.c_str());
      return report;
    }
    sources[kind] = stores.back()->view();
  }
  // TLS paths find no credentials when this fails and are reported as skipped.
  if (any_tls(o) && !prepare_tls_credentials(o.tmpdir, why)) {
    std::fprintf(stderr, "zcbench: %s\n", why.c_str());
  }
  runner run(o, std::move(sources), report);
  for (transport via : o.transports) {
    std::unique_ptr<veth_pair> veth;
    if (via == transport::veth) {
      veth = veth_pair::create(why);
      if (!veth) {
        report.skipped.push_back({"*", "veth", why});
        std::fprintf(stderr, "zcbench: veth skipped: %s\n", why.c_str());
        continue;
      }
    }
    run.run_transport(via, veth.get());
  }
  return report;
}

}  // namespace zcbench
