#pragma once

#include <map>
#include <string>
#include <vector>

#include "edgefd/result.h"

namespace edgefd::runtime {

/// What the device plugin allocated to this container (DESIGN.md, device plugin contract),
/// read from EDGEFD_BIG_CPUS / EDGEFD_MID_CPUS / EDGEFD_LITTLE_CPUS and every
/// EDGEFD_<NAME>_DEVICES, intersected with the CPUs this process may run on.
struct Allocation {
  std::vector<int> big_cpus;
  std::vector<int> mid_cpus;
  std::vector<int> little_cpus;
  std::vector<int> allowed_cpus;  ///< sched_getaffinity at start
  /// Resource NAME (as in the variable) -> device IDs.
  std::map<std::string, std::vector<std::string>> devices;

  /// Cores for compute threads: big, else mid, else every allowed core.
  std::vector<int> ComputeCpus() const;
  /// Whether the environment named cores at all (else nothing is pinned: the scheduler may
  /// move threads away from cores other processes are using).
  bool Explicit() const { return !big_cpus.empty() || !mid_cpus.empty() || !little_cpus.empty(); }
  /// Cores for I/O threads: little, else mid, else the compute cores.
  std::vector<int> IoCpus() const;
};

/// Parses "4,5", "0-3,6" (an empty string is an empty list). Names the variable on error.
Result<std::vector<int>> ParseCpuList(const std::string& variable, const std::string& text);

/// Reads the allocation from `env` (KEY=VALUE strings; pass environ in production).
Result<Allocation> ReadAllocation(char** env);

/// A device node opened for the lifetime of the process (the CPU backend only holds it so
/// the allocation is visibly in use; no accelerator backend is built).
struct OpenedDevice {
  std::string resource;
  std::string id;
  std::string path;  ///< empty when no node was found for the ID
  bool opened = false;
  std::string error;
};

/// Opens the /dev node of every allocated device ID: the ID itself if it is an absolute
/// path, else /dev/<id> if that exists. File descriptors stay open until process exit.
std::vector<OpenedDevice> OpenAllocatedDevices(const Allocation& allocation,
                                               const std::string& dev_root = "/dev");

/// Pins the calling thread to `cpus` (all of them, letting the kernel choose among them).
Status PinThisThread(const std::vector<int>& cpus);

/// "[4,5]" for JSON.
std::string CpuListJson(const std::vector<int>& cpus);

}  // namespace edgefd::runtime
