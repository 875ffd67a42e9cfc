#pragma once

#include <string>
#include <vector>

#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// Picks `size` devices out of `available` (IDs the kubelet still has free), always keeping
/// `must_include`. Devices are grouped by PluginDevice::group (CPU cluster, or an
/// accelerator's NUMA node): it fills up the groups the must-include devices are in, then
/// takes one group that can hold the rest alone (the smallest that fits, keeping big groups
/// whole for later), and otherwise the fewest groups (largest first). Within a group it
/// takes the lowest IDs. IDs the snapshot does not know count as a group of their own.
/// Returns fewer than `size` IDs only when `available` is too short.
std::vector<std::string> PreferredAllocation(const ResourceSnapshot& snapshot,
                                             const std::vector<std::string>& available,
                                             const std::vector<std::string>& must_include,
                                             int size);

}  // namespace edgefd::deviceplugin
