#pragma once

// The allocation contract (DESIGN.md, "Device plugin contract"): the environment the device
// plugin's Allocate answer sets and the runtime reads. Both sides take the names from here.
//
//   EDGEFD_<NAME>_DEVICES=<id,...>     an accelerator resource's stable device IDs
//   EDGEFD_<NAME>_DEVNODES=<path,...>  the container paths of its /dev nodes (edgefd's
//                                      addition: IDs are not paths), in device-ID order
//   EDGEFD_BIG_CPUS / EDGEFD_MID_CPUS / EDGEFD_LITTLE_CPUS=<cpu list>  the allocated cores
//
// NAME is the resource name upper-cased with '-' and '.' turned into '_'
// ("movidius-ncs" -> MOVIDIUS_NCS).
//
// A CDI spec (DESIGN.md, "DRA and CDI contract") sets these variables for a whole allocation
// (per claim) and, per device, metadata named after the device:
//   EDGEFD_<DEVICE>_<ATTRIBUTE>=<value>  (EDGEFD_EDGETPU_1_1_2_SERIAL, EDGEFD_CPU4_CORE_CLASS)
// where DEVICE is the device's CDI/DRA name turned into a NAME the same way.

#include <array>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace edgefd {

/// The core classes that get a variable, in the order the runtime prefers them for compute.
inline constexpr std::array<std::string_view, 3> kCoreClasses = {"big", "mid", "little"};
/// A core class's resource is `<class>-cpu` (edgefd.io/big-cpu).
inline constexpr std::string_view kCoreResourceSuffix = "-cpu";

/// The core class a core resource serves ("little-cpu" -> "little"); "" for a resource that
/// is not a core class.
std::string_view CoreClassOf(std::string_view resource);

/// NAME of a resource in the variables ("movidius-ncs" -> "MOVIDIUS_NCS").
std::string AllocationEnvName(std::string_view resource);
/// "EDGEFD_<NAME>_DEVICES" for an accelerator resource.
std::string DevicesVariable(std::string_view resource);
/// "EDGEFD_<NAME>_DEVNODES" for an accelerator resource.
std::string DevnodesVariable(std::string_view resource);
/// "EDGEFD_<CLASS>_CPUS" for a core class ("little" -> "EDGEFD_LITTLE_CPUS").
std::string CpusVariable(std::string_view core_class);
/// "EDGEFD_<DEVICE>_<ATTRIBUTE>": one attribute of one device in CDI metadata
/// ("edgetpu-1-1-2", "SERIAL" -> "EDGEFD_EDGETPU_1_1_2_SERIAL").
std::string DeviceMetadataVariable(std::string_view device_name, std::string_view attribute);

/// The values: items joined with ',' (IDs, paths; CPU lists use FormatCpuList) and split
/// back, empty items dropped (a hand-written variable may have them).
std::string JoinAllocationList(const std::vector<std::string>& items);
std::vector<std::string> SplitAllocationList(std::string_view value);

/// An allocation as the environment states it, before the reader applies any policy.
struct AllocationEnv {
  /// Core class ("big") -> CPUs, for every EDGEFD_<CLASS>_CPUS that is set.
  std::map<std::string, std::vector<int>> cpus;
  /// NAME -> device IDs, for every EDGEFD_<NAME>_DEVICES.
  std::map<std::string, std::vector<std::string>> devices;
  /// NAME -> device node paths, for every EDGEFD_<NAME>_DEVNODES; absent when the variable is
  /// not set (a plugin that predates it), empty when the plugin allocated no node.
  std::map<std::string, std::vector<std::string>> devnodes;
};

/// Reads the allocation from `env` (KEY=VALUE strings: environ, or a container's envs). A CPU
/// variable that is not a CPU list is an Error naming the variable and its value.
Result<AllocationEnv> ParseAllocationEnv(const std::vector<std::string>& env);

}  // namespace edgefd
