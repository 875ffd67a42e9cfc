#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/dra/resource_api.h"

namespace edgefd::dra {

/// The API's `version` member: a semantic version (NormalizeSemver's output), which CEL
/// compares with `.isGreaterThan(semver("2.0.0"))`.
struct SemVer {
  std::string text;  ///< "2.1.0"

  bool operator==(const SemVer&) const = default;
};

/// A typed device attribute: the API's `int`, `string`, `bool` or `version` member.
using AttributeValue = std::variant<int64_t, std::string, bool, SemVer>;

/// A device taint (resource.k8s.io DeviceTaint).
struct DeviceTaint {
  std::string key;  ///< "edgefd.io/unplugged"
  std::string value;
  std::string effect;      ///< "NoSchedule" or "NoExecute"
  std::string time_added;  ///< RFC 3339; empty lets the API server fill it in

  bool operator==(const DeviceTaint&) const = default;
};

/// One device as a ResourceSlice lists it.
struct SliceDevice {
  std::string name;  ///< DNS label, deviceplugin::DeviceName
  /// Unqualified names, so they live in the driver's domain:
  /// `device.attributes["edgefd.io"].kind` in CEL.
  std::map<std::string, AttributeValue> attributes;
  std::vector<DeviceTaint> taints;

  bool operator==(const SliceDevice&) const = default;
};

/// Taint keys edgefd sets.
inline constexpr char kUnpluggedTaint[] = "edgefd.io/unplugged";
inline constexpr char kUnhealthyTaint[] = "edgefd.io/unhealthy";
/// On a device a container holds through the device plugin (one allocation record per node).
inline constexpr char kDevicePluginTaint[] = "edgefd.io/device-plugin";

/// The attributes of DESIGN.md's DRA contract for one device: kind (accelerator, camera,
/// cpu), model (the rule name; a core's model), vendorID, productID, stableID, driver,
/// numaNode, and the versions driverVersion, firmwareVersion, runtimeVersion (type version,
/// semver-normalised; one that is no version is left out with a debug log); cores also
/// coreClass, capacity, maxMHz, cluster, cpu. Unknown values are left out; strings longer than the
/// API's 64 characters are cut and given a hash suffix.
std::map<std::string, AttributeValue> DeviceAttributes(
    const deviceplugin::ResourceSnapshot& resource, const deviceplugin::PluginDevice& device);

/// What the pool should list now. A present, healthy device is listed as it is. With
/// `taints` (the API server keeps device taints): a present but unhealthy device is listed
/// with a NoSchedule taint, and a vanished device that a prepared claim still holds
/// (`held`, by device name) stays listed with a NoExecute taint so the pods using it are
/// evicted. Without taints such devices are left out. Everything else that is gone leaves.
/// A device a container holds through the device plugin (`taken`, by device name) gets a
/// NoSchedule taint (without taints it is left out), so the scheduler allocates it to no
/// claim. Devices whose names collide keep the first; the result is sorted by name.
std::vector<SliceDevice> PoolDevices(const std::vector<deviceplugin::ResourceSnapshot>& resources,
                                     const std::set<std::string>& held, bool taints,
                                     const std::set<std::string>& taken = {});

/// The most devices one slice carries (the API allows 128, or 64 when any device of the slice
/// has taints; edgefd always uses the lower bound so adding a taint never splits a slice).
inline constexpr size_t kMaxDevicesPerSlice = 64;

/// The name of the pool's `index`-th slice: "<node>-edgefd.io-<index>", shortened with a
/// stable hash when the node name is long (a slice name is a DNS subdomain of at most 253).
std::string SliceName(std::string_view node, size_t index);

/// Where a ResourceSlice belongs.
struct SliceTarget {
  std::string node;      ///< node and pool name
  std::string node_uid;  ///< owner reference to the Node when known (slices go with it)
  int64_t generation = 1;
  size_t slice_count = 1;
};

/// The ResourceSlice object for `devices` in the given API version.
Json SliceJson(const ResourceApi& api, const SliceTarget& target, size_t index,
               const std::vector<SliceDevice>& devices);

/// Splits the pool's devices into slices of at most kMaxDevicesPerSlice (one empty slice for
/// an empty pool, so the pool and its driver stay visible).
std::vector<std::vector<SliceDevice>> SplitPool(const std::vector<SliceDevice>& devices);

}  // namespace edgefd::dra
