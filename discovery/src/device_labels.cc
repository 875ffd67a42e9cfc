#include <map>
#include <set>

#include "edgefd/discovery/labels.h"

namespace edgefd {

// DESIGN.md label contract point 4. Only healthy devices count: a Hailo card whose driver is
// unloaded, or an accelerator without the /dev nodes its rule needs, cannot be used by a pod.
void AddDeviceLabels(const Inventory& inventory, Labels& labels) {
  std::map<std::string, int> accel;
  // Per rule, the versions its healthy devices report; a label only where they agree.
  std::map<std::string, std::set<std::string>> driver_versions;
  std::map<std::string, std::set<std::string>> runtime_versions;
  std::set<std::string> cameras;  // by stable ID: two camera rules matching one device count once
  for (const Device& d : inventory.devices) {
    if (!d.healthy) continue;
    if (d.camera) {
      cameras.insert(d.id);
    } else {
      ++accel[d.rule];
      driver_versions[d.rule].insert(d.driver_version);
      runtime_versions[d.rule].insert(d.runtime_version);
    }
  }
  std::string prefix(kLabelPrefix);
  for (const auto& [rule, count] : accel) {
    std::string name = SanitizeLabelName(rule);
    labels[prefix + "accel." + name] = "true";
    labels[prefix + "accel." + name + ".count"] = std::to_string(count);
    // Two devices of one rule on different drivers: no one version is the node's.
    for (const auto& [kind, versions] : {std::pair{"driver-version", &driver_versions[rule]},
                                         {"runtime-version", &runtime_versions[rule]}}) {
      if (versions->size() != 1 || versions->begin()->empty()) continue;
      std::string value = SanitizeLabelValue(*versions->begin());
      if (!value.empty()) labels[prefix + SanitizeLabelName("accel." + name + "." + kind)] = value;
    }
  }
  if (!cameras.empty()) {
    labels[prefix + "camera"] = "true";
    labels[prefix + "camera.count"] = std::to_string(cameras.size());
  }
}

}  // namespace edgefd
