#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
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
  /// The last reconcile succeeded, or its failure is one a retry may fix and has not lasted
  /// long (Agent::Options::unready_after). What /readyz and edgefd_ready say.
  std::atomic<bool> ready{false};

  /// Sets `ready`; `reason` says why not (the last reconcile's error).
  void SetReadiness(bool is_ready, std::string reason = {});
  /// Why /readyz answers 503 ("" when ready).
  std::string NotReadyReason() const;

 private:
  mutable std::mutex mu_;
  std::string not_ready_reason_ = "no successful reconcile yet";
};

/// The metrics in Prometheus text exposition format (version 0.0.4).
std::string RenderPrometheus(const AgentMetrics& metrics);

/// What the agent's /readyz and /metrics say (edgefd/common/health.h): ready while `ready`
/// holds, else 503 with the last reconcile's error. `metrics` must outlive what is served.
HealthChecks AgentHealth(const AgentMetrics& metrics);

}  // namespace edgefd
