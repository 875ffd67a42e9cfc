#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "edgefd/common/health.h"

namespace edgefd {

/// Counters the reconcile loop updates and the HTTP endpoint reads (lock-free).
struct AgentMetrics {
  std::atomic<uint64_t> reconciles{0};       ///< reconcile attempts
  std::atomic<uint64_t> failures{0};         ///< attempts that did not converge
  std::atomic<uint64_t> patches{0};          ///< PATCH requests the API server accepted
  std::atomic<uint64_t> conflicts{0};        ///< 409s answered by re-reading
  std::atomic<uint64_t> events{0};           ///< inventory change notifications
  std::atomic<double> last_success_unix{0};  ///< seconds since the epoch; 0 before the first
  std::atomic<double> discovery_seconds{0};  ///< duration of the latest discovery
  std::atomic<int64_t> labels_owned{0};
  std::atomic<bool> ready{false};  ///< a reconcile has succeeded
};

/// The metrics in Prometheus text exposition format (version 0.0.4).
std::string RenderPrometheus(const AgentMetrics& metrics);

/// What the agent's /readyz and /metrics say (edgefd/common/health.h): ready once a reconcile
/// has succeeded. `metrics` must outlive what is served from it.
HealthChecks AgentHealth(const AgentMetrics& metrics);

}  // namespace edgefd
