#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "edgefd/common/health.h"
#include "edgefd/dra/claims.h"
#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/publisher.h"

namespace edgefd::dra {

/// What the DRA plugin reports about itself, read from its parts at the moment of a request.
struct DraState {
  PublisherStats slices;
  KubeletPluginStats plugin;
  RegistrationState registration;
  size_t prepared_claims = 0;
  ClaimStats claims;
  /// Devices containers hold through the device plugin, as last polled (tainted in the pool).
  size_t device_plugin_devices = 0;
};

/// The edgefd_dra_* metrics in the Prometheus text format.
std::string RenderMetrics(const DraState& state);

/// Why the DRA plugin cannot serve claims yet (the kubelet has not accepted its registration,
/// or the pool was never written), or nullopt when it can.
std::optional<std::string> NotReadyReason(const DraState& state);

/// What the program's /metrics and /readyz say (edgefd/common/health.h): the DRA metrics and
/// readiness, and with `device_plugin` (--mode both) the device plugin's as well: its metrics
/// follow, and the program is ready when both are.
HealthChecks DraHealth(std::function<DraState()> state, HealthChecks device_plugin = {});

}  // namespace edgefd::dra
