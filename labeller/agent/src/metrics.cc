// The agent's health and metrics endpoint, served by the shared HttpEndpoint.
#include "edgefd/agent/metrics.h"

#include <cstdio>

#include "edgefd/common/http_endpoint.h"

namespace edgefd {
namespace {

void AppendMetric(std::string& out, const char* name, const char* type, const char* help,
                  double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " ";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g\n", value);
  out += buf;
}

class HealthServerImpl final : public HealthServer {
 public:
  explicit HealthServerImpl(std::unique_ptr<HttpEndpoint> endpoint)
      : endpoint_(std::move(endpoint)) {}
  uint16_t port() const override { return endpoint_->port(); }

 private:
  std::unique_ptr<HttpEndpoint> endpoint_;
};

}  // namespace

std::string RenderPrometheus(const AgentMetrics& m) {
  std::string out;
  AppendMetric(out, "edgefd_reconciles_total", "counter", "Reconcile attempts.",
               static_cast<double>(m.reconciles.load()));
  AppendMetric(out, "edgefd_reconcile_failures_total", "counter",
               "Reconcile attempts that did not converge.", static_cast<double>(m.failures.load()));
  AppendMetric(out, "edgefd_node_patches_total", "counter",
               "Node patches accepted by the API server.", static_cast<double>(m.patches.load()));
  AppendMetric(out, "edgefd_patch_conflicts_total", "counter",
               "409 Conflict answers resolved by re-reading the Node.",
               static_cast<double>(m.conflicts.load()));
  AppendMetric(out, "edgefd_inventory_events_total", "counter",
               "Inventory change notifications received.", static_cast<double>(m.events.load()));
  AppendMetric(out, "edgefd_last_success_timestamp_seconds", "gauge",
               "Unix time of the last successful reconcile (0: none yet).",
               m.last_success_unix.load());
  AppendMetric(out, "edgefd_labels_owned", "gauge", "Labels edgefd owns on the Node.",
               static_cast<double>(m.labels_owned.load()));
  AppendMetric(out, "edgefd_discovery_duration_seconds", "gauge",
               "Duration of the latest discovery run.", m.discovery_seconds.load());
  AppendMetric(out, "edgefd_ready", "gauge", "1 once a reconcile has succeeded.",
               m.ready.load() ? 1 : 0);
  return out;
}

Result<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& address,
                                                          const AgentMetrics& metrics) {
  auto endpoint = HttpEndpoint::Start(
      address,
      [&metrics](std::string_view path) -> HttpReply {
        if (path == "/healthz") return {200, "text/plain", "ok\n"};
        if (path == "/readyz") {
          if (metrics.ready) return {200, "text/plain", "ok\n"};
          return {503, "text/plain", "not ready: no successful reconcile yet\n"};
        }
        if (path == "/metrics") {
          return {200, "text/plain; version=0.0.4; charset=utf-8", RenderPrometheus(metrics)};
        }
        return {404, "text/plain", "not found\n"};
      },
      "--metrics-addr");
  if (!endpoint) return endpoint.error();
  return std::unique_ptr<HealthServer>(std::make_unique<HealthServerImpl>(std::move(*endpoint)));
}

}  // namespace edgefd
