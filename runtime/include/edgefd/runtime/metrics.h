#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "edgefd/common/http_endpoint.h"
#include "edgefd/common/result.h"

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

/// Serves GET /metrics (PrometheusText) and /healthz ("ok") for one stage on the shared
/// edgefd::HttpEndpoint. Port 0 picks a free port.
class MetricsServer {
 public:
  static Result<std::unique_ptr<MetricsServer>> Start(int port, const StageCounters* counters,
                                                      int stage);
  int port() const { return endpoint_->port(); }

 private:
  explicit MetricsServer(std::unique_ptr<HttpEndpoint> endpoint) : endpoint_(std::move(endpoint)) {}
  std::unique_ptr<HttpEndpoint> endpoint_;
};

}  // namespace edgefd::runtime
