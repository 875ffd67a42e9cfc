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
  out.Gauge("edgefd_ready", "1 once a reconcile has succeeded.", m.ready.load() ? 1 : 0);
  return out.text();
}

HealthChecks AgentHealth(const AgentMetrics& metrics) {
  HealthChecks checks;
  checks.metrics = [&metrics] { return RenderPrometheus(metrics); };
  checks.not_ready = [&metrics]() -> std::optional<std::string> {
    if (metrics.ready) return std::nullopt;
    return "no successful reconcile yet";
  };
  return checks;
}

}  // namespace edgefd
