// CPU labels (DESIGN.md label contract point 3) and the per-class CPU lists for --output json.

#include "edgefd/common/json.h"
#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/labels.h"

namespace edgefd {

void AddCpuLabels(const Inventory& inventory, Labels& labels) {
  const CpuTopology& cpu = inventory.cpu;
  const std::string prefix = std::string(kLabelPrefix) + "cpu.";
  if (std::string arch = SanitizeLabelValue(cpu.arch); !arch.empty())
    labels[prefix + "arch"] = arch;
  if (cpu.cores.empty()) return;
  labels[prefix + "cores"] = std::to_string(cpu.OnlineCount());
  if (cpu.threads_per_core > 1)
    labels[prefix + "threads-per-core"] = std::to_string(cpu.threads_per_core);
  if (cpu.classes.empty()) return;
  labels[prefix + "heterogeneous"] = cpu.Heterogeneous() ? "true" : "false";
  if (!cpu.Heterogeneous()) {
    if (std::string model = SanitizeLabelValue(cpu.classes.front().model); !model.empty()) {
      labels[prefix + "model"] = model;
    }
    return;
  }
  for (const CpuClass& c : cpu.classes) {
    const std::string p = prefix + c.name + ".";
    labels[p + "cores"] = std::to_string(c.cpus.size());
    if (std::string model = SanitizeLabelValue(c.model); !model.empty())
      labels[p + "model"] = model;
    if (c.max_mhz > 0) labels[p + "max-mhz"] = std::to_string(c.max_mhz);
    if (c.capacity > 0) labels[p + "capacity"] = std::to_string(c.capacity);
  }
}

std::string CpuClassesJson(const CpuTopology& topology) {
  auto list = [](const std::vector<int>& cpus) {
    std::string out = "[";
    for (size_t i = 0; i < cpus.size(); ++i) {
      if (i) out += ", ";
      out += std::to_string(cpus[i]);
    }
    return out + "]";
  };
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& key, const std::vector<int>& cpus) {
    out += first ? "" : ", ";
    first = false;
    out += JsonQuote(key) + ": " + list(cpus);
  };
  for (const CpuClass& c : topology.classes) add(c.name, c.cpus);
  std::vector<int> offline;
  for (const CpuCore& c : topology.cores) {
    if (!c.online) offline.push_back(c.id);
  }
  if (!offline.empty()) add("offline", offline);
  return out + "}";
}

}  // namespace edgefd
