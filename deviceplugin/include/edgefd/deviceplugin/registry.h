#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/discovery/inventory.h"

namespace edgefd::deviceplugin {

/// Prefix of every resource name edgefd advertises.
inline constexpr std::string_view kResourceDomain = "edgefd.io/";

/// What kind of thing a resource hands out; decides the environment of an allocation.
enum class ResourceKind { kAccelerator, kCpu };

/// One allocatable unit of a resource, as the kubelet sees it.
struct PluginDevice {
  std::string id;  ///< "cpu4", "1-1.2", "0000:01:00.0"
  bool healthy = true;
  bool present = true;                ///< false once the device left the inventory
  int numa_node = -1;                 ///< -1 when sysfs does not say
  int group = -1;                     ///< CPU cluster, or NUMA node of an accelerator
  int cpu = -1;                       ///< logical CPU number for core resources
  std::vector<std::string> devnodes;  ///< /dev nodes handed to the container
  // What DRA attributes and CDI metadata say about the device (empty / 0 when unknown).
  std::string model;       ///< core model ("cortex-a76"); accelerators: empty
  std::string vendor_id;   ///< USB/PCI vendor ("18d1")
  std::string product_id;  ///< USB/PCI product ("9302")
  std::string serial;      ///< USB serial number, as the device reports it
  std::string driver;      ///< kernel driver bound to it
  int capacity = 0;        ///< core capacity, kernel cpu_capacity scale
  int max_mhz = 0;         ///< core maximum frequency
  /// Who else holds it (a prepared DRA claim; ClaimHolds), "" when nobody does. Set only on
  /// the device plugin's view of a snapshot, never in the registry.
  std::string held_by;

  bool operator==(const PluginDevice&) const = default;
};

/// The devices of one resource at one moment.
struct ResourceSnapshot {
  std::string resource;  ///< "edgefd.io/little-cpu"
  std::string name;      ///< "little-cpu", "movidius-ncs"
  ResourceKind kind = ResourceKind::kAccelerator;
  bool camera = false;                ///< found by a `kind: camera` rule
  std::vector<PluginDevice> devices;  ///< ordered by id (numbers compared as numbers)
  uint64_t generation = 0;            ///< grows whenever `devices` changes

  /// The device with this ID, or nullptr.
  const PluginDevice* Find(std::string_view id) const;
};

/// The variable an allocation of this resource sets (edgefd/common/allocation.h):
/// `EDGEFD_<NAME>_DEVICES` for accelerators, `EDGEFD_<CLASS>_CPUS` for cores
/// ("little-cpu" → "EDGEFD_LITTLE_CPUS").
std::string EnvVarName(const ResourceSnapshot& snapshot);

/// `EDGEFD_<NAME>_DEVNODES` for accelerators (the container paths of the allocated device
/// nodes, because device IDs are not paths); empty for core resources, which have no nodes.
std::string DevnodesEnvVarName(const ResourceSnapshot& snapshot);

/// Where the device plugin gets its devices from. The gRPC service only reads it; whoever
/// owns the inventory feeds it. Implementations are safe to use from many threads.
class DeviceRegistry {
 public:
  /// Called after something changed, with the resource whose devices changed; an empty
  /// name means the set of resources itself changed. Runs on the updater's thread.
  using Listener = std::function<void(const std::string& resource)>;

  virtual ~DeviceRegistry() = default;
  /// Every resource name currently advertised, sorted.
  virtual std::vector<std::string> ResourceNames() const = 0;
  /// A copy of one resource's devices; nullopt for a resource it does not serve.
  virtual std::optional<ResourceSnapshot> Snapshot(std::string_view resource) const = 0;
  /// Adds a listener; returns a handle for RemoveListener.
  virtual int AddListener(Listener listener) = 0;
  /// After this returns the listener is never called again (do not call it from a listener).
  virtual void RemoveListener(int handle) = 0;
};

/// The resources an inventory offers: one per accelerator rule with `resource` devices, and
/// `big-cpu`/`mid-cpu`/`little-cpu` on heterogeneous nodes (one device `cpu<N>` per core).
std::vector<ResourceSnapshot> ResourcesFromInventory(const Inventory& inventory);

/// A DeviceRegistry fed with whole inventories (initial discovery, then one per hardware
/// change). A device that leaves the inventory stays listed as Unhealthy and not present,
/// so capacity does not flap and a stick that re-enumerates comes back under the same ID.
class InventoryRegistry final : public DeviceRegistry {
 public:
  InventoryRegistry() = default;
  explicit InventoryRegistry(const Inventory& inventory) { Update(inventory); }

  /// Replaces the devices with those of `inventory` and tells listeners what changed.
  void Update(const Inventory& inventory);

  std::vector<std::string> ResourceNames() const override;
  std::optional<ResourceSnapshot> Snapshot(std::string_view resource) const override;
  int AddListener(Listener listener) override;
  void RemoveListener(int handle) override;

 private:
  mutable std::mutex mu_;  // guards resources_
  std::map<std::string, ResourceSnapshot, std::less<>> resources_;
  uint64_t next_generation_ = 1;

  // Held while listeners run, so RemoveListener can promise no call after it returns; also
  // serialises Update so listeners see changes in order.
  std::mutex listeners_mu_;
  std::map<int, Listener> listeners_;
  int next_listener_ = 1;
};

/// Compares device IDs with embedded numbers as numbers: "cpu2" < "cpu10".
bool NaturalLess(std::string_view a, std::string_view b);

}  // namespace edgefd::deviceplugin
