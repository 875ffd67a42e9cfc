// The agent's metrics and probes, served by the shared health endpoint.
#include "edgefd/agent/metrics.h"

#include "edgefd/common/prometheus.h"

namespace edgefd {

std::string RenderPrometheus(const AgentMetrics& m) {
  PrometheusWriter out;
  out.Counter("edgefd_reconciles_total", "Reconcile attempts.", m.reconciles.load());
  out.Counter("edgefd_reconcile_failures_total", "Reconcile attempts that did not converge.",
              m.failures.load());
  out.Counter("edgefd_node_patches_total", "Node patches accepted by the API server.",
              m.patches.load());
  out.Counter("edgefd_patch_conflicts_total",
              "409 Conflict answers resolved by re-reading the Node.", m.conflicts.load());
  out.Counter("edgefd_inventory_events_total", "Inventory change notifications received.",
              m.events.load());
  out.Gauge("edgefd_last_success_timestamp_seconds",
            "Unix time of the last successful reconcile (0: none yet).",
            m.last_success_unix.load());
  out.Gauge("edgefd_labels_owned", "Labels edgefd owns on the Node.", m.labels_owned.load());
  out.Gauge("edgefd_discovery_duration_seconds", "Duration of the latest discovery run.",
            m.discovery_seconds.load());
  out.Gauge("edgefd_ready",
            "1 while reconciles succeed; 0 before the first success, after a failure a retry "
            "cannot fix (401, 403) and while failures last longer than the grace period.",
            m.ready.load() ? 1 : 0);
  return out.text();
}

void AgentMetrics::SetReadiness(bool is_ready, std::string reason) {
  std::lock_guard lock(mu_);
  not_ready_reason_ = is_ready ? std::string() : std::move(reason);
  ready.store(is_ready);
}

std::string AgentMetrics::NotReadyReason() const {
  std::lock_guard lock(mu_);
  return not_ready_reason_;
}

HealthChecks AgentHealth(const AgentMetrics& metrics) {
  HealthChecks checks;
  checks.metrics = [&metrics] { return RenderPrometheus(metrics); };
  checks.not_ready = [&metrics]() -> std::optional<std::string> {
    if (metrics.ready) return std::nullopt;
    return metrics.NotReadyReason();
  };
  return checks;
}

}  // namespace edgefd
