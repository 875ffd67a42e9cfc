#include "edgefd/dra/metrics.h"

#include <sstream>

namespace edgefd::dra {

std::string RenderMetrics(const PublisherStats& slices, const KubeletPluginStats& plugin,
                          const RegistrationState& registration, size_t prepared_claims) {
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << ' ' << value << '\n';
  };
  metric("edgefd_dra_registered", "gauge",
         "1 when the kubelet accepted the DRA plugin's registration",
         registration.registered ? 1 : 0);
  metric("edgefd_dra_prepare_calls_total", "counter", "NodePrepareResources calls",
         plugin.prepare_calls);
  metric("edgefd_dra_prepared_claims_total", "counter", "Claims prepared successfully",
         plugin.prepared_claims);
  metric("edgefd_dra_prepare_errors_total", "counter", "Claims answered with an error",
         plugin.prepare_errors);
  metric("edgefd_dra_unprepare_calls_total", "counter", "NodeUnprepareResources calls",
         plugin.unprepare_calls);
  metric("edgefd_dra_unprepare_errors_total", "counter", "Claims whose unprepare failed",
         plugin.unprepare_errors);
  metric("edgefd_dra_prepared_claims", "gauge", "Claims prepared on this node now",
         prepared_claims);
  metric("edgefd_dra_pool_generation", "gauge", "Generation of the node's ResourceSlice pool",
         slices.generation);
  metric("edgefd_dra_pool_devices", "gauge", "Devices in the node's ResourceSlice pool",
         slices.devices);
  metric("edgefd_dra_slice_syncs_total", "counter", "Pool writes that changed something",
         slices.syncs);
  metric("edgefd_dra_slice_sync_failures_total", "counter", "Failed pool write attempts",
         slices.failures);
  metric("edgefd_dra_device_taints", "gauge", "1 when vanished devices are tainted",
         slices.taints ? 1 : 0);
  return out.str();
}

}  // namespace edgefd::dra
