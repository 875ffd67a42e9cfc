#pragma once

#include <cstddef>
#include <string>

#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/publisher.h"

namespace edgefd::dra {

/// The DRA plugin's counters in the Prometheus text format (edgefd_dra_* metrics).
std::string RenderMetrics(const PublisherStats& slices, const KubeletPluginStats& plugin,
                          const RegistrationState& registration, size_t prepared_claims);

}  // namespace edgefd::dra
