#pragma once

// Shared between the CPU source's .cc files; not a public interface.

#include <string>
#include <vector>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// One `/cpus/cpu@N` node as a core, with the node's name for matching `cpuN/of_node`.
struct DtCpu {
  std::string node_name;  ///< "cpu@100"
  CpuCore core;           ///< id in cpu-map-then-reg order; capacity not yet computed
  bool riscv = false;     ///< lists the generic "riscv" compatible
};

/// The enabled and disabled cpu nodes of `/cpus`, numbered as Linux would number them.
std::vector<DtCpu> ReadDeviceTreeCpus(const DtNode& root);

/// The architecture the devicetree's core models imply, or "".
std::string ArchFromDeviceTreeCpus(const std::vector<DtCpu>& cpus);

}  // namespace edgefd
