#pragma once

/// The terminal table: one row per record, columns aligned, grouped by transport
/// and message size, with a header naming the host and the settings.

#include <string>

#include "apps/zcbench/host_info.h"
#include "apps/zcbench/measure.h"
#include "apps/zcbench/options.h"

namespace zcbench {

std::string format_table(const run_report& report, const options& o, const host_info& host);

}  // namespace zcbench
