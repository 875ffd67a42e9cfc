// Classification of cores into big / mid / little (DESIGN.md label contract point 3).

#include <algorithm>
#include <map>
#include <tuple>

#include "edgefd/discovery/cpu.h"

namespace edgefd {
namespace {

struct Group {
  std::string model;
  int capacity = 0;
  int max_mhz = 0;
  std::vector<int> cpus;
};

// True when the groups' capacities can order them: all known and not the kernel's default of
// 1024 everywhere (what it reports when the devicetree gives no capacity-dmips-mhz).
bool CapacitiesUsable(const std::vector<Group>& groups) {
  bool all_default = true;
  for (const Group& g : groups) {
    if (g.capacity <= 0) return false;
    if (g.capacity != 1024) all_default = false;
  }
  return !all_default || groups.size() == 1;
}

int64_t EstimatedPerf(const Group& g) {
  return static_cast<int64_t>(CorePerfPerMhz(g.model)) * std::max(g.max_mhz, 1);
}

CpuClass ToClass(std::string name, const Group& g) {
  CpuClass c;
  c.name = std::move(name);
  c.model = g.model;
  c.cpus = g.cpus;
  c.max_mhz = g.max_mhz;
  c.capacity = g.capacity;
  return c;
}

}  // namespace

void ComputeCapacityFromDmips(std::vector<CpuCore>& cores) {
  bool all_freq = true;
  for (const CpuCore& c : cores) {
    if (c.dmips_mhz > 0 && c.max_mhz <= 0) all_freq = false;
  }
  int64_t largest = 0;
  auto raw = [&](const CpuCore& c) -> int64_t {
    return static_cast<int64_t>(c.dmips_mhz) * (all_freq ? c.max_mhz : 1);
  };
  for (const CpuCore& c : cores) largest = std::max(largest, raw(c));
  for (CpuCore& c : cores) {
    c.capacity = (c.dmips_mhz > 0 && largest > 0) ? static_cast<int>(raw(c) * 1024 / largest) : 0;
  }
}

void ClassifyCpus(CpuTopology& topology) {
  topology.classes.clear();
  // Group by (model, capacity): the same core at the same capacity is one class wherever its
  // cluster is (RK3588's two A76 clusters); a faster-clocked "prime" core of the same model
  // has a higher capacity and is a class of its own.
  std::map<std::pair<std::string, int>, Group> by_key;
  for (const CpuCore& c : topology.cores) {
    if (!c.online) continue;
    Group& g = by_key[{c.model, c.capacity}];
    g.model = c.model;
    g.capacity = c.capacity;
    g.max_mhz = std::max(g.max_mhz, c.max_mhz);
    g.cpus.push_back(c.id);
  }
  std::vector<Group> groups;
  for (auto& [key, g] : by_key) {
    // by_key orders a model's groups by capacity: fold one into its predecessor when they are
    // within 5 % (vendor kernels derive capacity from each cluster's binned max frequency, so
    // RK3588's two A76 clusters can read 1004 and 1024). A DynamIQ prime core is 15 % or more
    // above its siblings and stays apart.
    if (!groups.empty() && groups.back().model == g.model && g.capacity > 0 &&
        (g.capacity - groups.back().capacity) * 20 <= g.capacity) {
      Group& prev = groups.back();
      prev.capacity = g.capacity;
      prev.max_mhz = std::max(prev.max_mhz, g.max_mhz);
      prev.cpus.insert(prev.cpus.end(), g.cpus.begin(), g.cpus.end());
      std::sort(prev.cpus.begin(), prev.cpus.end());
      continue;
    }
    std::sort(g.cpus.begin(), g.cpus.end());
    groups.push_back(std::move(g));
  }
  if (groups.empty()) return;
  if (groups.size() == 1) {
    topology.classes.push_back(ToClass("all", groups.front()));
    return;
  }
  bool by_capacity = CapacitiesUsable(groups);
  std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
    if (by_capacity && a.capacity != b.capacity) return a.capacity > b.capacity;
    if (!by_capacity && EstimatedPerf(a) != EstimatedPerf(b))
      return EstimatedPerf(a) > EstimatedPerf(b);
    if (a.max_mhz != b.max_mhz) return a.max_mhz > b.max_mhz;
    return a.cpus.front() > b.cpus.front();  // later-numbered clusters are the big ones
  });
  topology.classes.push_back(ToClass("big", groups.front()));
  if (groups.size() >= 3) {
    // Only three class names exist (and three device-plugin resources): everything between
    // the fastest and the slowest group is "mid".
    Group mid;
    for (size_t i = 1; i + 1 < groups.size(); ++i) {
      const Group& g = groups[i];
      if (!mid.model.empty()) mid.model += '_';
      mid.model += g.model;
      mid.capacity = std::max(mid.capacity, g.capacity);
      mid.max_mhz = std::max(mid.max_mhz, g.max_mhz);
      mid.cpus.insert(mid.cpus.end(), g.cpus.begin(), g.cpus.end());
    }
    std::sort(mid.cpus.begin(), mid.cpus.end());
    topology.classes.push_back(ToClass("mid", mid));
  }
  topology.classes.push_back(ToClass("little", groups.back()));
  // A class whose capacity could not order it carries no capacity: 1024 everywhere on a
  // heterogeneous node is the kernel's "unknown", not a measurement.
  if (!by_capacity) {
    for (CpuClass& c : topology.classes) c.capacity = 0;
  }
}

}  // namespace edgefd
