#include "edgefd/dra/metrics.h"

#include "edgefd/common/prometheus.h"

namespace edgefd::dra {

std::string RenderMetrics(const DraState& s) {
  PrometheusWriter out;
  out.Gauge("edgefd_dra_registered", "1 when the kubelet accepted the DRA plugin's registration.",
            s.registration.registered ? 1 : 0);
  out.Counter("edgefd_dra_prepare_calls_total", "NodePrepareResources calls.",
              static_cast<double>(s.plugin.prepare_calls));
  out.Counter("edgefd_dra_prepared_claims_total", "Claims prepared successfully.",
              static_cast<double>(s.plugin.prepared_claims));
  out.Counter("edgefd_dra_prepare_errors_total", "Claims answered with an error.",
              static_cast<double>(s.plugin.prepare_errors));
  out.Counter("edgefd_dra_unprepare_calls_total", "NodeUnprepareResources calls.",
              static_cast<double>(s.plugin.unprepare_calls));
  out.Counter("edgefd_dra_unprepare_errors_total", "Claims whose unprepare failed.",
              static_cast<double>(s.plugin.unprepare_errors));
  out.Counter("edgefd_dra_prepare_conflicts_total",
              "Claims refused because a container holds one of their devices through the "
              "device plugin (the kubelet's PodResources API says so).",
              static_cast<double>(s.claims.conflicts));
  out.Counter("edgefd_dra_pod_resources_errors_total",
              "Claims refused because the kubelet's PodResources API could not say what the "
              "device plugin handed out (missing, refusing, or past the deadline).",
              static_cast<double>(s.claims.assignments_unknown));
  out.Counter("edgefd_dra_abandoned_calls_total",
              "NodePrepare/NodeUnprepareResources calls left unfinished because the kubelet "
              "cancelled them or their deadline passed.",
              static_cast<double>(s.plugin.abandoned_calls));
  out.Counter("edgefd_dra_claim_waits_total",
              "Calls that waited for another call on the same claim (calls on one claim run "
              "one at a time).",
              static_cast<double>(s.claims.waits));
  out.Counter("edgefd_dra_checkpoint_corrupt_total",
              "Unreadable checkpoints found at start, kept as <file>.corrupt.<time> and rebuilt "
              "from the API server (an Event on the Node says so).",
              static_cast<double>(s.claims.checkpoint_corrupt));
  out.Counter("edgefd_dra_checkpoint_recovered_claims_total",
              "Prepared claims rebuilt from the API server after an unreadable checkpoint.",
              static_cast<double>(s.claims.recovered_claims));
  out.Gauge("edgefd_dra_device_plugin_devices",
            "Devices containers hold through the device plugin (PodResources, polled), which "
            "the pool taints edgefd.io/device-plugin.",
            static_cast<double>(s.device_plugin_devices));
  out.Gauge("edgefd_dra_prepared_claims", "Claims prepared on this node now.",
            static_cast<double>(s.prepared_claims));
  out.Gauge("edgefd_dra_pool_generation", "Generation of the node's ResourceSlice pool.",
            static_cast<double>(s.slices.generation));
  out.Gauge("edgefd_dra_pool_devices", "Devices in the node's ResourceSlice pool.",
            static_cast<double>(s.slices.devices));
  out.Counter("edgefd_dra_slice_syncs_total", "Pool writes that changed something.",
              static_cast<double>(s.slices.syncs));
  out.Counter("edgefd_dra_slice_sync_failures_total", "Failed pool write attempts.",
              static_cast<double>(s.slices.failures));
  out.Gauge("edgefd_dra_device_taints", "1 when vanished devices are tainted in the pool.",
            s.slices.taints ? 1 : 0);
  return out.text();
}

std::optional<std::string> NotReadyReason(const DraState& state) {
  if (!state.registration.registered) return "not registered with the kubelet yet";
  if (!state.slices.published) return "ResourceSlices not published yet";
  return std::nullopt;
}

HealthChecks DraHealth(std::function<DraState()> state, HealthChecks device_plugin) {
  HealthChecks checks;
  checks.metrics = [state, dp = device_plugin.metrics] {
    std::string text = RenderMetrics(state());
    if (dp) text += dp();
    return text;
  };
  checks.not_ready = [state, dp = device_plugin.not_ready]() -> std::optional<std::string> {
    if (auto reason = NotReadyReason(state())) return reason;
    if (dp) {
      if (auto reason = dp()) return "device plugin: " + *reason;
    }
    return std::nullopt;
  };
  return checks;
}

}  // namespace edgefd::dra
