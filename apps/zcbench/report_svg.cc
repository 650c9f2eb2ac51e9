#include "apps/zcbench/report_svg.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

namespace zcbench {
namespace {

constexpr double kBar = 16, kBarGap = 3, kGroupGap = 28;
constexpr double kLeft = 78, kRight = 24, kPlotHeight = 230, kPanelTop = 34, kPanelBottom = 52;
constexpr std::array kColors = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

std::string num(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

// The smallest 1/2/5 x 10^k step giving at most five ticks up to `top`.
double tick_step(double top) {
  if (top <= 0) return 1;
  const double raw = top / 5;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

std::string value_label(double v) {
  return v >= 100 ? num(v, 0) : v >= 10 ? num(v, 1) : num(v, 2);
}

struct layout {
  std::vector<std::size_t> sizes;
  std::vector<std::string> paths;
  double width = 0;
};

struct panel {
  std::string title;
  std::string y_label;
  // bottom (solid) and top (light, stacked) values of a bar; top may be 0.
  std::function<std::pair<double, double>(const record&)> values;
  std::function<std::string(const record&)> label;
};

class svg_writer {
 public:
  svg_writer(const run_report& report, const layout& l) : report_(report), l_(l) {}

  // Draws one panel with its top edge at `y`; returns its height.
  double draw(const panel& p, transport via, double y) {
    std::vector<const record*> rows;
    double top = 0;
    for (const record& r : report_.records) {
      if (r.via != via) continue;
      rows.push_back(&r);
      const auto [a, b] = p.values(r);
      top = std::max(top, a + b);
    }
    const double step = tick_step(top * 1.3);
    const double axis_max = std::max(step, std::ceil(top * 1.3 / step) * step);
    const double y0 = y + kPanelTop, y1 = y0 + kPlotHeight;
    const auto scale = [&](double v) { return kPlotHeight * v / axis_max; };
    out_ += "<text x=\"" + num(kLeft) + "\" y=\"" + num(y + 20) + "\" class=\"title\">" +
            escape(p.title) + "</text>\n";
    const long ticks = std::lround(axis_max / step);  // axis_max is a whole number of steps
    for (long i = 0; i <= ticks; ++i) {
      const double t = static_cast<double>(i) * step;
      const double ty = y1 - scale(t);
      out_ += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(l_.width - kRight) + "\" y1=\"" +
              num(ty) + "\" y2=\"" + num(ty) + "\" class=\"grid\"/>\n";
      out_ += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(ty + 4) + "\" class=\"tick\">" +
              value_label(t) + "</text>\n";
    }
    out_ += "<text transform=\"translate(18," + num((y0 + y1) / 2) +
            ") rotate(-90)\" class=\"axis\">" + escape(p.y_label) + "</text>\n";
    double x = kLeft + kGroupGap / 2;
    for (std::size_t size : l_.sizes) {
      const double group_start = x;
      for (std::size_t i = 0; i < l_.paths.size(); ++i) {
        const record* r = find(rows, l_.paths[i], size);
        if (r != nullptr) bar(p, *r, kColors[i % kColors.size()], x, y1, scale);
        x += kBar + kBarGap;
      }
      out_ += "<text x=\"" + num((group_start + x - kBarGap) / 2) + "\" y=\"" + num(y1 + 18) +
              "\" class=\"group\">" + format_byte_count(size) + "</text>\n";
      x += kGroupGap;
    }
    out_ += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(l_.width - kRight) + "\" y1=\"" +
            num(y1) + "\" y2=\"" + num(y1) + "\" class=\"axisline\"/>\n";
    out_ += "<text x=\"" + num((kLeft + l_.width - kRight) / 2) + "\" y=\"" + num(y1 + 38) +
            "\" class=\"axis\">message size</text>\n";
    return kPanelTop + kPlotHeight + kPanelBottom;
  }

  std::string& text() { return out_; }

 private:
  static const record* find(const std::vector<const record*>& rows, const std::string& path,
                            std::size_t size) {
    for (const record* r : rows) {
      if (r->path == path && r->message_size == size) return r;
    }
    return nullptr;
  }

  template <typename Scale>
  void bar(const panel& p, const record& r, const char* color, double x, double y1, Scale scale) {
    const auto [solid, light] = p.values(r);
    const double hs = scale(solid), hl = scale(light);
    out_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y1 - hs) + "\" width=\"" + num(kBar) +
            "\" height=\"" + num(hs) + "\" fill=\"" + color + "\"><title>" + escape(r.path) + " " +
            format_byte_count(r.message_size) + ": " + escape(p.label(r)) + "</title></rect>\n";
    if (light > 0) {
      out_ += "<rect x=\"" + num(x) + "\" y=\"" + num(y1 - hs - hl) + "\" width=\"" + num(kBar) +
              "\" height=\"" + num(hl) + "\" fill=\"" + color + "\" fill-opacity=\"0.35\"/>\n";
    }
    const double lx = x + kBar / 2 + 4, ly = y1 - hs - hl - 4;
    out_ += "<text transform=\"translate(" + num(lx) + "," + num(ly) +
            ") rotate(-90)\" class=\"value\">" + escape(p.label(r)) + "</text>\n";
  }

  const run_report& report_;
  const layout& l_;
  std::string out_;
};

layout plan(const run_report& report, const options& o) {
  layout l;
  for (std::size_t s : o.sizes) {
    for (const record& r : report.records) {
      if (r.message_size == s) {
        l.sizes.push_back(s);
        break;
      }
    }
  }
  for (const std::string& p : o.paths) {
    for (const record& r : report.records) {
      if (r.path == p) {
        l.paths.push_back(p);
        break;
      }
    }
  }
  const double group = static_cast<double>(l.paths.size()) * (kBar + kBarGap) + kGroupGap;
  l.width = std::max(640.0, kLeft + kRight + group * static_cast<double>(l.sizes.size()));
  return l;
}

// Swatch and name per path, wrapping to a new row at the right edge; returns the
// y below the last row.
double legend(std::string& out, const layout& l, double y) {
  double x = kLeft;
  for (std::size_t i = 0; i < l.paths.size(); ++i) {
    const double w = 28 + 7.5 * static_cast<double>(l.paths[i].size());
    if (x + w > l.width - kRight && x > kLeft) {
      x = kLeft;
      y += 18;
    }
    out += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"12\" height=\"12\" fill=\"" +
           kColors[i % kColors.size()] + "\"/>\n<text x=\"" + num(x + 16) + "\" y=\"" +
           num(y + 10) + "\" class=\"legend\">" + escape(l.paths[i]) + "</text>\n";
    x += w;
  }
  return y + 18;
}

const char* kStyle =
    "<style>text{font-family:sans-serif;fill:#222}.title{font-size:14px;font-weight:bold}"
    ".tick{font-size:11px;text-anchor:end}.axis{font-size:12px;text-anchor:middle}"
    ".group{font-size:12px;text-anchor:middle}.value{font-size:10px}"
    ".legend{font-size:12px}.grid{stroke:#ddd}.axisline{stroke:#222}</style>\n";

}  // namespace

std::string format_svg(const run_report& report, const options& o, const host_info& host) {
  const layout l = plan(report, o);
  svg_writer w(report, l);
  std::string& out = w.text();
  out += "<text x=\"" + num(kLeft) +
         "\" y=\"22\" class=\"title\">zcbench: " + format_byte_count(o.bytes) +
         " per trial, median of " + std::to_string(o.repeat) +
         ", recv=" + std::string(to_string(o.recv)) + "</text>\n";
  out += "<text x=\"" + num(kLeft) + "\" y=\"40\" class=\"legend\">" +
         escape("kernel " + host.kernel + ", " + std::to_string(host.cores) + " cores, " +
                host.date + "; GB = 10^9 bytes") +
         "</text>\n";
  double y = legend(out, l, 50);
  out += "<text x=\"" + num(kLeft) + "\" y=\"" + num(y + 14) +
         "\" class=\"legend\">CPU bars: solid = sending thread, light = receiving thread on top; "
         "labels: sender+receiver.</text>\n";
  y += 24;
  const panel throughput{"throughput", "GB/s",
                         [](const record& r) {
                           return std::pair{r.gb_per_s, 0.0};
                         },
                         [](const record& r) { return value_label(r.gb_per_s); }};
  const panel cpu{"CPU seconds per GB", "CPU s per GB",
                  [](const record& r) {
                    return std::pair{r.sender_cpu_s_per_gb, r.receiver_cpu_s_per_gb};
                  },
                  [](const record& r) {
                    return value_label(r.sender_cpu_s_per_gb) + "+" +
                           value_label(r.receiver_cpu_s_per_gb);
                  }};
  for (transport via : o.transports) {
    const bool any = std::any_of(report.records.begin(), report.records.end(),
                                 [&](const record& r) { return r.via == via; });
    if (!any) continue;
    for (const panel* p : {&throughput, &cpu}) {
      panel titled = *p;
      titled.title = std::string(to_string(via)) + ": " + p->title;
      y += w.draw(titled, via, y);
    }
  }
  if (report.records.empty()) {
    out += "<text x=\"" + num(kLeft) + "\" y=\"" + num(y + 20) + "\">no records</text>\n";
    y += 40;
  }
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(l.width, 0) + "\" height=\"" +
         num(y, 0) + "\" viewBox=\"0 0 " + num(l.width, 0) + " " + num(y, 0) + "\">\n" + kStyle +
         "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + out + "</svg>\n";
}

}  // namespace zcbench
