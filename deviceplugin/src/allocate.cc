#include "edgefd/deviceplugin/allocate.h"

#include <algorithm>

#include "edgefd/common/allocation.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/deviceplugin/cdi.h"

namespace edgefd::deviceplugin {
namespace {

// The device `id` names, when it may be handed out.
Result<const PluginDevice*> Usable(const ResourceSnapshot& snapshot, const std::string& id) {
  const PluginDevice* d = snapshot.Find(id);
  if (d == nullptr) {
    return Error{snapshot.resource + ": unknown device ID \"" + id + "\"", ErrorCode::kNotFound};
  }
  if (!d->present) {
    return Error{snapshot.resource + ": device \"" + id + "\" is gone (removed from the node)",
                 ErrorCode::kFailedPrecondition};
  }
  if (!d->healthy) {
    return Error{snapshot.resource + ": device \"" + id + "\" is unhealthy",
                 ErrorCode::kFailedPrecondition};
  }
  if (!d->held_by.empty()) {
    return Error{snapshot.resource + ": device \"" + id + "\" is held by " + d->held_by +
                     ", prepared through DRA; a device goes to one container at a time",
                 ErrorCode::kFailedPrecondition};
  }
  return d;
}

}  // namespace

Result<ContainerAllocation> AllocateDevices(const ResourceSnapshot& snapshot,
                                            const std::vector<std::string>& ids) {
  if (ids.empty()) {
    return Error{snapshot.resource + ": Allocate request for a container names no device IDs",
                 ErrorCode::kInvalidArgument};
  }
  std::vector<const PluginDevice*> devices;
  for (const std::string& id : ids) {
    Result<const PluginDevice*> d = Usable(snapshot, id);
    if (!d) return d.error();
    if (std::find(devices.begin(), devices.end(), *d) == devices.end()) devices.push_back(*d);
  }
  std::sort(devices.begin(), devices.end(),
            [](const PluginDevice* a, const PluginDevice* b) { return NaturalLess(a->id, b->id); });

  ContainerAllocation out;
  std::vector<std::string> device_ids;
  std::vector<int> cpus;
  for (const PluginDevice* d : devices) {
    device_ids.push_back(d->id);
    cpus.push_back(d->cpu);
    for (const std::string& node : d->devnodes) {
      if (std::find(out.devnodes.begin(), out.devnodes.end(), node) == out.devnodes.end()) {
        out.devnodes.push_back(node);
      }
    }
    out.cdi_devices.push_back(QualifiedCdiName(DeviceName(snapshot, *d)));
  }
  out.env[EnvVarName(snapshot)] =
      snapshot.kind == ResourceKind::kCpu ? FormatCpuList(cpus) : JoinAllocationList(device_ids);
  // The IDs above are stable names, not paths; the workload needs the paths to open.
  if (snapshot.kind == ResourceKind::kAccelerator) {
    out.env[DevnodesEnvVarName(snapshot)] = JoinAllocationList(out.devnodes);
  }
  return out;
}

}  // namespace edgefd::deviceplugin
