#pragma once

/// The chart: a hand-written SVG with, per transport, two panels of grouped bars
/// (groups = message sizes, one bar per path): GB/s, and CPU s/GB with the
/// sender's share solid and the receiver's stacked light on top. Axis labels,
/// a legend and values on the bars. No dependency.

#include <string>

#include "apps/zcbench/host_info.h"
#include "apps/zcbench/measure.h"
#include "apps/zcbench/options.h"

namespace zcbench {

std::string format_svg(const run_report& report, const options& o, const host_info& host);

}  // namespace zcbench
