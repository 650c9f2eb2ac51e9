#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/range.h>

namespace pagewire::http {
namespace {

struct spec {
  bool suffix;
  std::uint64_t first;
  bool has_last;
  std::uint64_t last;  // or the suffix length
};

// int-range = first-pos "-" [ last-pos ] / suffix-range = "-" suffix-length
bool parse_spec(std::string_view s, spec& out) {
  const auto dash = s.find('-');
  if (dash == std::string_view::npos) return false;
  const auto a = s.substr(0, dash), b = s.substr(dash + 1);
  if (a.empty()) {
    const auto n = parse_u64(b);
    if (!n) return false;
    out = spec{true, 0, false, *n};
    return true;
  }
  const auto f = parse_u64(a);
  if (!f) return false;
  if (b.empty()) {
    out = spec{false, *f, false, 0};
    return true;
  }
  const auto l = parse_u64(b);
  if (!l || *l < *f) return false;  // §14.1.1: last < first makes the spec invalid
  out = spec{false, *f, true, *l};
  return true;
}

}  // namespace

range_set evaluate_range(std::string_view field, std::uint64_t size) {
  range_set out;
  field = trim_ows(field);
  const auto eq = field.find('=');
  if (eq == std::string_view::npos || !iequals(trim_ows(field.substr(0, eq)), "bytes")) {
    return out;
  }
  std::array<spec, kMaxRanges> specs{};
  std::size_t nspecs = 0;
  bool valid = true;
  bool too_many = false;
  for_each_list_element(field.substr(eq + 1), [&](std::string_view e) {
    if (!valid || too_many) return;
    if (nspecs == kMaxRanges) {
      too_many = true;
      return;
    }
    valid = parse_spec(e, specs[nspecs++]);
  });
  if (!valid || nspecs == 0 || too_many) return out;

  for (std::size_t i = 0; i < nspecs; ++i) {
    const spec& s = specs[i];
    byte_range r{};
    if (s.suffix) {
      if (s.last == 0 || size == 0) continue;  // unsatisfiable
      const std::uint64_t n = s.last < size ? s.last : size;
      r = {size - n, n};
    } else {
      if (s.first >= size) continue;  // unsatisfiable
      const std::uint64_t last = s.has_last && s.last < size ? s.last : size - 1;
      r = {s.first, last - s.first + 1};
    }
    // Overlapping or descending ranges: serve the whole (see header).
    if (out.count > 0 && r.first <= out.items[out.count - 1].last()) {
      return range_set{};
    }
    out.items[out.count++] = r;
  }
  out.outcome = out.count == 0 ? range_outcome::unsatisfiable : range_outcome::satisfiable;
  return out;
}

}  // namespace pagewire::http
