#pragma once

// What a container gets for a set of devices: the one answer both ways of handing devices out
// give (the device plugin's Allocate, the DRA driver's NodePrepareResources), in edgefd's own
// terms. Each adapts it to its protocol.

#include <map>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// The allocation of some devices of one resource to one container.
struct ContainerAllocation {
  /// The contract's variables (edgefd/common/allocation.h): EDGEFD_<NAME>_DEVICES and
  /// EDGEFD_<NAME>_DEVNODES for accelerators (DEVNODES set even when empty, so a runtime can
  /// tell "no nodes" from a plugin that predates it), EDGEFD_<CLASS>_CPUS for cores.
  std::map<std::string, std::string> env;
  /// The /dev nodes to give, each once, in device-ID order (host path = container path, rw).
  std::vector<std::string> devnodes;
  /// Per device, in device-ID order, its CDI device in the common spec (fully qualified).
  std::vector<std::string> cdi_devices;
};

/// The allocation of the devices `ids` of `snapshot` (duplicates count once). No ID, an ID the
/// resource does not know (kNotFound), or a device that is gone, unhealthy or held by someone
/// else (a prepared DRA claim; kFailedPrecondition, naming the holder) is an Error naming it.
Result<ContainerAllocation> AllocateDevices(const ResourceSnapshot& snapshot,
                                            const std::vector<std::string>& ids);

}  // namespace edgefd::deviceplugin
