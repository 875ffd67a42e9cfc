#pragma once

#include <map>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd::runtime {

/// What the device plugin allocated to this container, read from the variables of the
/// allocation contract (edgefd/common/allocation.h: EDGEFD_BIG/MID/LITTLE_CPUS, every
/// EDGEFD_<NAME>_DEVICES and EDGEFD_<NAME>_DEVNODES), with the cores intersected with the CPUs
/// this process may run on.
struct Allocation {
  std::vector<int> big_cpus;
  std::vector<int> mid_cpus;
  std::vector<int> little_cpus;
  std::vector<int> allowed_cpus;  ///< sched_getaffinity at start
  /// Resource NAME (as in the variable) -> device IDs: stable names such as a USB port path
  /// or PCI address, never paths. Kept for reporting.
  std::map<std::string, std::vector<std::string>> devices;
  /// Resource NAME -> container paths of its device nodes, in device-ID order, from
  /// EDGEFD_<NAME>_DEVNODES (edgefd's extension of the contract). A resource is absent when
  /// the variable was not set (a plugin that predates it); present and empty when the plugin
  /// allocated no node.
  std::map<std::string, std::vector<std::string>> devnodes;

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

/// One allocated device node and what became of it. The file descriptor is held for as long
/// as this object lives, so the allocation is visibly in use; only the CPU backend computes,
/// nothing drives the device.
struct OpenedDevice {
  std::string resource;
  /// The device ID the node belongs to. When the plugin's node list does not pair one to one
  /// with the IDs (a device with two nodes), every ID of the resource, comma-separated.
  std::string id;
  std::string path;  ///< the node; empty when the plugin named none for the ID
  bool opened = false;
  bool read_only = false;  ///< opened O_RDONLY because O_RDWR was refused
  int error_number = 0;    ///< errno of the failed open; 0 when opened or when no node was named
  std::string error;       ///< why it is not open, naming the node
  UniqueFd fd;

  /// "opened /dev/apex_0 (rw)", or "not opened: /dev/apex_1: No such file or directory".
  std::string Describe() const;
};

/// Opens every node in `allocation.devnodes` (O_RDWR, else O_RDONLY when that is refused;
/// never creating a file, never blocking on a FIFO). An ID with no node to open is reported
/// too, with the reason. Never fails as a whole: a missing node is one entry with its errno.
std::vector<OpenedDevice> OpenAllocatedDevices(const Allocation& allocation);

/// Logs each entry of OpenAllocatedDevices: info when opened, a warning naming the node when
/// not. `who` prefixes the line ("stage 1", "run").
void LogOpenedDevices(const std::vector<OpenedDevice>& devices, const std::string& who);

/// Pins the calling thread to `cpus` (all of them, letting the kernel choose among them).
Status PinThisThread(const std::vector<int>& cpus);

}  // namespace edgefd::runtime
