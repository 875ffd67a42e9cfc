// CPU labels (DESIGN.md label contract point 3) and the per-class CPU lists for --output json.

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

std::vector<std::pair<std::string, std::vector<int>>> CpuClassLists(const CpuTopology& topology) {
  std::vector<std::pair<std::string, std::vector<int>>> out;
  for (const CpuClass& c : topology.classes) out.emplace_back(c.name, c.cpus);
  std::vector<int> offline;
  for (const CpuCore& c : topology.cores) {
    if (!c.online) offline.push_back(c.id);
  }
  if (!offline.empty()) out.emplace_back("offline", std::move(offline));
  return out;
}

}  // namespace edgefd
