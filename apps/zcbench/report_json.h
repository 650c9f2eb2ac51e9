#pragma once

/// The JSON report: host info, settings, one record per path x size x transport
/// with every figure and every trial, and what was skipped or failed. The schema
/// is apps/zcbench/zcbench_schema.json ("schema": "pagewire.zcbench/1").

#include <string>

#include "apps/zcbench/host_info.h"
#include "apps/zcbench/measure.h"
#include "apps/zcbench/options.h"

namespace zcbench {

inline constexpr const char* kJsonSchemaId = "pagewire.zcbench/1";

std::string format_json(const run_report& report, const options& o, const host_info& host);

}  // namespace zcbench
