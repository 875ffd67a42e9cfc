#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "edgefd/common/health.h"

namespace edgefd::runtime {

/// Live counters of one stage, read by the /metrics endpoint while the stage runs. Every time
/// is a duration on the stage's own clock.
struct StageCounters {
  std::atomic<uint64_t> frames{0};
  std::atomic<uint64_t> drops{0};        ///< newer frames replaced unread ones at our input
  std::atomic<uint64_t> send_errors{0};  ///< failed sends to the next stage
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> compute_ns{0};  ///< total compute time
  std::atomic<uint64_t> wait_ns{0};     ///< total time waiting for input
  std::atomic<uint64_t> send_ns{0};     ///< total time sending to the next stage
  std::atomic<int64_t> first_frame_ns{0};
  std::atomic<int64_t> last_frame_ns{0};

  /// One frame: waited, computed, sent (ns), done at `done_ns` (this process's clock).
  void Count(int64_t wait, int64_t compute, int64_t send, int64_t done_ns);
};

/// Prometheus text exposition of `counters` for stage `stage` (fps, drops, per-frame ms).
std::string PrometheusText(const StageCounters& counters, int stage);

/// What a stage's /metrics says (edgefd/common/health.h); `counters` must outlive what is served
/// from it.
HealthChecks StageHealth(const StageCounters& counters, int stage);

/// A stage's periodic line (pods run with endless frame counts and never print a final
/// report): every `every` (0: never), fps and mean wait/compute/send per frame since the last.
class StageLog {
 public:
  StageLog(int stage, std::chrono::milliseconds every);
  /// Logs when the period is over.
  void Maybe(const StageCounters& counters);

 private:
  int stage_;
  std::chrono::milliseconds every_;
  std::chrono::steady_clock::time_point next_;
  std::chrono::steady_clock::time_point since_;
  uint64_t frames_ = 0, compute_ns_ = 0, wait_ns_ = 0, send_ns_ = 0;
};

}  // namespace edgefd::runtime
