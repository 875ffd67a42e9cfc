#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "edgefd/common/health.h"

namespace edgefd::runtime {

/// Live counters of one stage, read by the /metrics endpoint while the stage runs.
struct StageCounters {
  std::atomic<uint64_t> frames{0};
  std::atomic<uint64_t> drops{0};        ///< newer frames replaced unread ones at our input
  std::atomic<uint64_t> send_errors{0};  ///< failed sends to the next stage
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> compute_ns{0};  ///< total compute time
  std::atomic<int64_t> first_frame_ns{0};
  std::atomic<int64_t> last_frame_ns{0};
};

/// Prometheus text exposition of `counters` for stage `stage` (fps, drops, stage ms).
std::string PrometheusText(const StageCounters& counters, int stage);

/// What a stage's /metrics says (edgefd/common/health.h); `counters` must outlive what is served
/// from it.
HealthChecks StageHealth(const StageCounters& counters, int stage);

}  // namespace edgefd::runtime
