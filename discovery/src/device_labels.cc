#include <map>
#include <set>

#include "edgefd/discovery/labels.h"

namespace edgefd {

// DESIGN.md label contract point 4. Only healthy devices count: a Hailo card whose driver is
// unloaded, or an accelerator without the /dev nodes its rule needs, cannot be used by a pod.
void AddDeviceLabels(const Inventory& inventory, Labels& labels) {
  std::map<std::string, int> accel;
  std::set<std::string> cameras;  // by stable ID: two camera rules matching one device count once
  for (const Device& d : inventory.devices) {
    if (!d.healthy) continue;
    if (d.camera) {
      cameras.insert(d.id);
    } else {
      ++accel[d.rule];
    }
  }
  std::string prefix(kLabelPrefix);
  for (const auto& [rule, count] : accel) {
    std::string name = SanitizeLabelName(rule);
    labels[prefix + "accel." + name] = "true";
    labels[prefix + "accel." + name + ".count"] = std::to_string(count);
  }
  if (!cameras.empty()) {
    labels[prefix + "camera"] = "true";
    labels[prefix + "camera.count"] = std::to_string(cameras.size());
  }
}

}  // namespace edgefd
