#include "edgefd/dra/slices.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "edgefd/common/allocation.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/versions.h"

namespace edgefd::dra {
using deviceplugin::PluginDevice;
using deviceplugin::ResourceKind;
using deviceplugin::ResourceSnapshot;

namespace {

constexpr size_t kMaxAttributeString = 64;
constexpr size_t kMaxObjectName = 253;

std::string HashSuffix(std::string_view s) { return "-" + ShortHash(s); }

// The API allows strings of at most 64 characters in attributes; a longer one (a deep
// devicetree path) is cut and given a hash of the whole, so it stays distinct.
std::string FitAttribute(std::string_view s) {
  if (s.size() <= kMaxAttributeString) return std::string(s);
  return std::string(s.substr(0, kMaxAttributeString - 9)) + HashSuffix(s);
}

Json AttributeJson(const AttributeValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return {{"int", *i}};
  if (const auto* b = std::get_if<bool>(&v)) return {{"bool", *b}};
  if (const auto* version = std::get_if<SemVer>(&v)) return {{"version", version->text}};
  return {{"string", std::get<std::string>(v)}};
}

}  // namespace

std::map<std::string, AttributeValue> DeviceAttributes(const ResourceSnapshot& resource,
                                                       const PluginDevice& device) {
  std::map<std::string, AttributeValue> a;
  auto str = [&](const char* key, const std::string& value) {
    if (!value.empty()) a[key] = FitAttribute(value);
  };
  auto num = [&](const char* key, int value, int unknown) {
    if (value != unknown) a[key] = static_cast<int64_t>(value);
  };
  str("stableID", device.id);
  num("numaNode", device.numa_node, -1);
  if (resource.kind == ResourceKind::kCpu) {
    a["kind"] = std::string("cpu");
    str("model", device.model);
    str("coreClass", std::string(CoreClassOf(resource.name)));
    num("capacity", device.capacity, 0);
    num("maxMHz", device.max_mhz, 0);
    num("cluster", device.group, -1);
    num("cpu", device.cpu, -1);
  } else {
    a["kind"] = std::string(resource.camera ? "camera" : "accelerator");
    str("model", resource.name);
    str("vendorID", device.vendor_id);
    str("productID", device.product_id);
    str("driver", device.driver);
    for (const auto& [key, raw] : {std::pair{"driverVersion", &device.driver_version},
                                   {"firmwareVersion", &device.firmware_version},
                                   {"runtimeVersion", &device.runtime_version}}) {
      if (raw->empty()) continue;
      if (std::optional<std::string> version = NormalizeSemver(*raw)) {
        a[key] = SemVer{*version};
      } else {
        spdlog::debug("{} device '{}': {} '{}' is not a semantic version; attribute left out",
                      resource.resource, device.id, key, *raw);
      }
    }
  }
  return a;
}

std::vector<SliceDevice> PoolDevices(const std::vector<ResourceSnapshot>& resources,
                                     const std::set<std::string>& held, bool taints,
                                     const std::set<std::string>& taken) {
  std::map<std::string, SliceDevice> by_name;
  for (const ResourceSnapshot& r : resources) {
    for (const PluginDevice& d : r.devices) {
      SliceDevice device;
      device.name = deviceplugin::DeviceName(r, d);
      if (!d.present) {
        if (!taints || !held.contains(device.name)) continue;
        device.taints.push_back({kUnpluggedTaint, "", "NoExecute", ""});
      } else if (!d.healthy) {
        if (!taints) continue;
        device.taints.push_back({kUnhealthyTaint, "", "NoSchedule", ""});
      }
      if (d.present && taken.contains(device.name)) {
        if (!taints) continue;
        device.taints.push_back({kDevicePluginTaint, "", "NoSchedule", ""});
      }
      device.attributes = DeviceAttributes(r, d);
      if (device.name.empty() || by_name.contains(device.name)) {
        spdlog::warn("{} device '{}': name '{}' is empty or taken by another device; not published",
                     r.resource, d.id, device.name);
        continue;
      }
      by_name.emplace(device.name, std::move(device));
    }
  }
  std::vector<SliceDevice> out;
  for (auto& [name, device] : by_name) out.push_back(std::move(device));
  return out;
}

std::string SliceName(std::string_view node, size_t index) {
  std::string suffix = "-" + std::string(kDriverName) + "-" + std::to_string(index);
  std::string name = std::string(node) + suffix;
  if (name.size() <= kMaxObjectName) return name;
  std::string head(node.substr(0, kMaxObjectName - suffix.size() - 9));
  while (!head.empty() && (head.back() == '-' || head.back() == '.')) head.pop_back();
  return head + HashSuffix(node) + suffix;
}

std::vector<std::vector<SliceDevice>> SplitPool(const std::vector<SliceDevice>& devices) {
  std::vector<std::vector<SliceDevice>> slices;
  for (size_t i = 0; i < devices.size(); i += kMaxDevicesPerSlice) {
    size_t end = std::min(devices.size(), i + kMaxDevicesPerSlice);
    slices.emplace_back(devices.begin() + static_cast<ptrdiff_t>(i),
                        devices.begin() + static_cast<ptrdiff_t>(end));
  }
  if (slices.empty()) slices.emplace_back();
  return slices;
}

Json SliceJson(const ResourceApi& api, const SliceTarget& target, size_t index,
               const std::vector<SliceDevice>& devices) {
  Json metadata = {{"name", SliceName(target.node, index)},
                   {"labels", {{"app.kubernetes.io/managed-by", "edgefd"}}}};
  if (!target.node_uid.empty()) {
    // Owned by the Node: deleting the Node deletes its slices.
    metadata["ownerReferences"] = Json::array({{{"apiVersion", "v1"},
                                                {"kind", "Node"},
                                                {"name", target.node},
                                                {"uid", target.node_uid},
                                                {"controller", true}}});
  }
  Json list = Json::array();
  for (const SliceDevice& d : devices) {
    Json attributes = Json::object();
    for (const auto& [key, value] : d.attributes) attributes[key] = AttributeJson(value);
    Json body = {{"attributes", attributes}};
    if (!d.taints.empty()) {
      Json taints = Json::array();
      for (const DeviceTaint& t : d.taints) {
        Json taint = {{"key", t.key}, {"effect", t.effect}};
        if (!t.value.empty()) taint["value"] = t.value;
        if (!t.time_added.empty()) taint["timeAdded"] = t.time_added;
        taints.push_back(std::move(taint));
      }
      body["taints"] = std::move(taints);
    }
    if (api.NestsDevices()) {
      list.push_back({{"name", d.name}, {"basic", std::move(body)}});
    } else {
      body["name"] = d.name;
      list.push_back(std::move(body));
    }
  }
  return {{"apiVersion", api.GroupVersion()},
          {"kind", "ResourceSlice"},
          {"metadata", std::move(metadata)},
          {"spec",
           {{"driver", kDriverName},
            {"nodeName", target.node},
            {"pool",
             {{"name", target.node},
              {"generation", target.generation},
              {"resourceSliceCount", target.slice_count}}},
            {"devices", std::move(list)}}}};
}

}  // namespace edgefd::dra
