#pragma once

// The node's allocation record as edgefd-nri reads it (DESIGN.md, "one allocation record per
// node"): which cores each container really holds, so that a container's EDGEFD_*_CPUS (which a
// pod can set itself) is honoured only where the record agrees.

#include <chrono>
#include <filesystem>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/dra_checkpoint.h"
#include "edgefd/deviceplugin/pod_resources.h"
#include "edgefd/nri/policy.h"

namespace edgefd::nri {

/// Where the cores each container holds come from. Read is called on the plugin's request
/// thread; an Error means nothing can be confirmed now.
class AllocationRecord {
 public:
  virtual ~AllocationRecord() = default;
  virtual Result<HeldCores> Read() = 0;
};

/// The cores `assigned` (the kubelet's PodResources answer) and `claims` (the DRA driver's
/// checkpoint) give each container: the device plugin's core devices (resource
/// edgefd.io/<class>-cpu, ID cpu<N>) and the cores a prepared claim's environment names, for
/// every claim the container uses (a claim the checkpoint does not know gives nothing).
HeldCores HeldCoresFrom(const deviceplugin::Assignments& assigned,
                        const deviceplugin::PreparedClaims& claims);

/// The record on a node: the kubelet's PodResources API and the DRA driver's checkpoint.
class NodeAllocationRecord final : public AllocationRecord {
 public:
  NodeAllocationRecord(std::filesystem::path pod_resources_socket,
                       std::filesystem::path dra_checkpoint,
                       std::chrono::milliseconds deadline = std::chrono::seconds(2));

  /// Asks the kubelet, then (only when a container uses an edgefd claim) reads the
  /// checkpoint; either failing is an Error naming it. A missing checkpoint is no claims.
  Result<HeldCores> Read() override;

 private:
  deviceplugin::PodResourcesClient client_;
  deviceplugin::DraCheckpoint checkpoint_;
};

}  // namespace edgefd::nri
