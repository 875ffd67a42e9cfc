#pragma once

#include "edgefd/common/json.h"
#include "edgefd/runtime/pipeline.h"

namespace edgefd::runtime {

/// What the sink measured as JSON, the same in `run --json` and in bench/runtime/pipeline_bench:
/// frames_received, drops, in_order, fps, fps_median, latency_p50_ms, latency_p99_ms,
/// sink_comm_ms, ccr, checksum, stage_compute_ms, stage_comm_ms (rounded for reading).
edgefd::Json SinkReportJson(const SinkReport& sink);

}  // namespace edgefd::runtime
