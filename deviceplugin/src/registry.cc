#include "edgefd/deviceplugin/registry.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "edgefd/common/allocation.h"

namespace edgefd::deviceplugin {

bool NaturalLess(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i]));
    const bool db = std::isdigit(static_cast<unsigned char>(b[j]));
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      // Compare digit runs by value: strip leading zeros, then longer means larger.
      std::string_view na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      while (na.size() > 1 && na.front() == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb.front() == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j]) return a[i] < b[j];
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

const PluginDevice* ResourceSnapshot::Find(std::string_view id) const {
  for (const PluginDevice& d : devices) {
    if (d.id == id) return &d;
  }
  return nullptr;
}

std::string EnvVarName(const ResourceSnapshot& snapshot) {
  if (snapshot.kind == ResourceKind::kCpu) {
    // "little-cpu" -> EDGEFD_LITTLE_CPUS: the contract names the variable after the class.
    return CpusVariable(CoreClassOf(snapshot.name));
  }
  return DevicesVariable(snapshot.name);
}

std::string DevnodesEnvVarName(const ResourceSnapshot& snapshot) {
  if (snapshot.kind != ResourceKind::kAccelerator) return "";
  return DevnodesVariable(snapshot.name);
}

namespace {

// The kubelet accepts `edgefd.io/<name>` only when <name> is a Kubernetes qualified name:
// at most 63 of [A-Za-z0-9._-], starting and ending alphanumeric.
bool ValidResourceName(std::string_view name) {
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (name.empty() || name.size() > 63 || !alnum(name.front()) || !alnum(name.back())) {
    return false;
  }
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

void SortDevices(std::vector<PluginDevice>& devices) {
  std::sort(devices.begin(), devices.end(),
            [](const PluginDevice& a, const PluginDevice& b) { return NaturalLess(a.id, b.id); });
}

}  // namespace

std::vector<ResourceSnapshot> ResourcesFromInventory(const Inventory& inventory) {
  std::map<std::string, ResourceSnapshot, std::less<>> out;
  for (const Device& d : inventory.devices) {
    if (!d.resource || d.id.empty()) continue;
    if (!ValidResourceName(d.rule)) {
      spdlog::warn(
          "rule '{}' cannot be a resource name (edgefd.io/<name> needs 1-63 of "
          "[A-Za-z0-9._-], alphanumeric at both ends); not advertising it",
          d.rule);
      continue;
    }
    ResourceSnapshot& r = out[std::string(kResourceDomain) + d.rule];
    r.resource = std::string(kResourceDomain) + d.rule;
    r.name = d.rule;
    r.kind = ResourceKind::kAccelerator;
    r.camera = d.camera;
    PluginDevice pd;
    pd.id = d.id;
    pd.healthy = d.healthy;
    pd.numa_node = d.numa_node;
    pd.group = d.numa_node;
    pd.devnodes = d.devnodes;
    pd.vendor_id = d.vendor_id;
    pd.product_id = d.product_id;
    pd.serial = d.serial;
    pd.driver = d.driver;
    pd.driver_version = d.driver_version;
    pd.firmware_version = d.firmware_version;
    pd.runtime_version = d.runtime_version;
    r.devices.push_back(std::move(pd));
  }
  for (const CpuClass& cls : inventory.cpu.classes) {
    // On a homogeneous node (a Raspberry Pi, a Jetson, an x86 server) the one class, "all",
    // is the largest there is: its cores are advertised as big (DESIGN.md), so one pod spec
    // asking for fast dedicated cores runs on every board.
    const bool only_class = !inventory.cpu.Heterogeneous() && cls.name == "all";
    const std::string core_class = only_class ? "big" : cls.name;
    if (core_class != "big" && core_class != "mid" && core_class != "little") continue;
    std::string name = core_class + std::string(kCoreResourceSuffix);
    ResourceSnapshot& r = out[std::string(kResourceDomain) + name];
    r.resource = std::string(kResourceDomain) + name;
    r.name = name;
    r.kind = ResourceKind::kCpu;
    for (int cpu : cls.cpus) {
      PluginDevice pd;
      pd.id = "cpu" + std::to_string(cpu);
      pd.cpu = cpu;
      for (const CpuCore& core : inventory.cpu.cores) {
        if (core.id != cpu) continue;
        pd.numa_node = core.numa_node;
        pd.group = core.cluster;
        pd.healthy = core.online;
        pd.model = core.model.empty() ? cls.model : core.model;
        pd.capacity = core.capacity != 0 ? core.capacity : cls.capacity;
        pd.max_mhz = core.max_mhz != 0 ? core.max_mhz : cls.max_mhz;
      }
      r.devices.push_back(std::move(pd));
    }
  }
  std::vector<ResourceSnapshot> result;
  for (auto& [name, r] : out) {
    SortDevices(r.devices);
    // Two udev devices with one ID (a rule matching a device and its child) are one device.
    r.devices.erase(
        std::unique(r.devices.begin(), r.devices.end(),
                    [](const PluginDevice& a, const PluginDevice& b) { return a.id == b.id; }),
        r.devices.end());
    result.push_back(std::move(r));
  }
  return result;
}

void InventoryRegistry::Update(const Inventory& inventory) {
  std::vector<ResourceSnapshot> fresh = ResourcesFromInventory(inventory);
  std::lock_guard listeners_lock(listeners_mu_);
  std::vector<std::string> changed;
  bool set_changed = false;
  {
    std::lock_guard lock(mu_);
    std::map<std::string, ResourceSnapshot, std::less<>> next;
    for (ResourceSnapshot& r : fresh) next.emplace(r.resource, std::move(r));
    // A resource that lost all its devices keeps its socket, with every device gone.
    for (const auto& [name, old] : resources_) {
      if (!next.contains(name)) {
        ResourceSnapshot empty = old;
        empty.devices.clear();
        next.emplace(name, std::move(empty));
      }
    }
    for (auto& [name, r] : next) {
      auto old = resources_.find(name);
      if (old == resources_.end()) {
        set_changed = true;
        r.generation = next_generation_++;
        continue;
      }
      // Devices that vanished stay, marked gone, so their IDs stay known and Allocate can
      // say "removed" rather than "unknown".
      for (const PluginDevice& d : old->second.devices) {
        if (r.Find(d.id) == nullptr) {
          PluginDevice gone = d;
          gone.healthy = false;
          gone.present = false;
          r.devices.push_back(std::move(gone));
        }
      }
      SortDevices(r.devices);
      if (r.devices == old->second.devices) {
        r.generation = old->second.generation;
      } else {
        r.generation = next_generation_++;
        changed.push_back(name);
      }
    }
    resources_ = std::move(next);
  }
  for (auto& [handle, listener] : listeners_) {
    if (set_changed) listener("");
    for (const std::string& name : changed) listener(name);
  }
}

std::vector<std::string> InventoryRegistry::ResourceNames() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, r] : resources_) names.push_back(name);
  return names;
}

std::optional<ResourceSnapshot> InventoryRegistry::Snapshot(std::string_view resource) const {
  std::lock_guard lock(mu_);
  auto it = resources_.find(resource);
  if (it == resources_.end()) return std::nullopt;
  return it->second;
}

int InventoryRegistry::AddListener(Listener listener) {
  std::lock_guard lock(listeners_mu_);
  int handle = next_listener_++;
  listeners_.emplace(handle, std::move(listener));
  return handle;
}

void InventoryRegistry::RemoveListener(int handle) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(handle);
}

}  // namespace edgefd::deviceplugin
