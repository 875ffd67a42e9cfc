// CPU topology from the devicetree `/cpus` node: the `--dtb` mode, and the fallback for what
// a live sysfs lacks.

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "cpu_internal.h"
#include "edgefd/discovery/cpu.h"

namespace edgefd {
namespace {

// "cluster10" sorts after "cluster2": devicetree readers sort children by name as strings.
int TrailingNumber(const std::string& name) {
  size_t end = name.size();
  size_t begin = end;
  while (begin > 0 && std::isdigit(static_cast<unsigned char>(name[begin - 1]))) --begin;
  if (begin == end || end - begin > 9) return -1;
  return std::stoi(name.substr(begin));
}

// cpu-map node kind: "cluster0" -> "cluster", "core12" -> "core".
std::string MapKind(const DtNode& n) {
  std::string base = n.BaseName();
  while (!base.empty() && std::isdigit(static_cast<unsigned char>(base.back()))) base.pop_back();
  return base;
}

std::vector<const DtNode*> NaturalOrder(const DtNode& node) {
  std::vector<const DtNode*> out;
  for (const DtNode& c : node.children) out.push_back(&c);
  std::stable_sort(out.begin(), out.end(), [](const DtNode* a, const DtNode* b) {
    std::string ba = MapKind(*a), bb = MapKind(*b);
    if (ba != bb) return ba < bb;
    return TrailingNumber(a->name) < TrailingNumber(b->name);
  });
  return out;
}

// Finds the nodes carrying the wanted phandles, breadth first (OPP tables usually sit at the
// root or under /cpus) and stopping once all are found: a large tree has thousands of nodes.
std::map<uint32_t, const DtNode*> FindPhandles(const DtNode& root, std::set<uint32_t> wanted) {
  std::map<uint32_t, const DtNode*> found;
  std::vector<const DtNode*> level = {&root};
  for (int depth = 0; depth < 64 && !level.empty() && !wanted.empty(); ++depth) {
    std::vector<const DtNode*> next;
    for (const DtNode* node : level) {
      for (const char* prop : {"phandle", "linux,phandle"}) {
        std::vector<uint32_t> cells = node->Cells(prop);
        if (cells.size() == 1 && wanted.erase(cells[0])) found.emplace(cells[0], node);
      }
      for (const DtNode& c : node->children) next.push_back(&c);
    }
    level = std::move(next);
  }
  return found;
}

uint64_t RegValue(const DtNode& cpu) {
  uint64_t v = 0;
  for (uint32_t cell : cpu.Cells("reg")) v = (v << 32) | cell;
  return v;
}

bool IsCpuNode(const DtNode& n) {
  std::optional<std::string> type = n.String("device_type");
  return type ? *type == "cpu" : n.BaseName() == "cpu";
}

// Highest frequency in MHz from an `operating-points-v2` table (enabled entries' first
// `opp-hz`), or from the legacy `operating-points` (kHz, µV) pairs. Naive: `opp-supported-hw`
// needs the chip's speed-bin fuses, which a devicetree does not carry.
int MaxOppMhz(const DtNode& cpu, const std::map<uint32_t, const DtNode*>& phandles) {
  uint64_t best_hz = 0;
  std::vector<uint32_t> ref = cpu.Cells("operating-points-v2");
  if (!ref.empty()) {
    auto it = phandles.find(ref[0]);
    if (it != phandles.end()) {
      for (const DtNode& opp : it->second->children) {
        if (!opp.Enabled()) continue;
        std::vector<uint32_t> hz = opp.Cells("opp-hz");
        if (hz.empty()) continue;
        uint64_t v = hz.size() >= 2 ? (static_cast<uint64_t>(hz[0]) << 32) | hz[1] : hz[0];
        best_hz = std::max(best_hz, v);
      }
    }
  }
  if (best_hz == 0) {
    std::vector<uint32_t> v1 = cpu.Cells("operating-points");
    for (size_t i = 0; i + 1 < v1.size(); i += 2) {
      best_hz = std::max(best_hz, static_cast<uint64_t>(v1[i]) * 1000);
    }
  }
  return static_cast<int>(best_hz / 1000000);
}

// Walks cpu-map (socketN / clusterN, possibly nested / coreN / threadN) in natural order,
// numbering each cluster that holds cores; records cluster and walk order per cpu phandle.
void WalkCpuMap(const DtNode& node, int depth, int& next_cluster,
                std::map<uint32_t, std::pair<int, int>>& placement, int& order) {
  if (depth > 8) return;
  bool holds_cores = false;
  for (const DtNode* c : NaturalOrder(node)) {
    if (MapKind(*c) == "core") holds_cores = true;
  }
  int cluster = -1;
  if (holds_cores) cluster = next_cluster++;
  for (const DtNode* c : NaturalOrder(node)) {
    std::string base = MapKind(*c);
    if (base == "core" || base == "thread") {
      std::vector<uint32_t> cpu = c->Cells("cpu");
      if (cpu.size() == 1) placement.emplace(cpu[0], std::make_pair(cluster, order++));
      if (base == "core") {
        for (const DtNode* t : NaturalOrder(*c)) {
          std::vector<uint32_t> tcpu = t->Cells("cpu");
          if (MapKind(*t) == "thread" && tcpu.size() == 1) {
            placement.emplace(tcpu[0], std::make_pair(cluster, order++));
          }
        }
      }
    } else {
      WalkCpuMap(*c, depth + 1, next_cluster, placement, order);
    }
  }
}

}  // namespace

std::vector<DtCpu> ReadDeviceTreeCpus(const DtNode& root) {
  std::vector<DtCpu> out;
  const DtNode* cpus = root.Child("cpus");
  if (cpus == nullptr) return out;
  std::set<uint32_t> opp_refs;
  for (const DtNode& n : cpus->children) {
    std::vector<uint32_t> ref = n.Cells("operating-points-v2");
    if (IsCpuNode(n) && !ref.empty()) opp_refs.insert(ref[0]);
  }
  std::map<uint32_t, const DtNode*> phandles = FindPhandles(root, std::move(opp_refs));

  std::map<uint32_t, std::pair<int, int>> placement;
  if (const DtNode* map = cpus->Child("cpu-map")) {
    int next_cluster = 0;
    int order = 0;
    WalkCpuMap(*map, 0, next_cluster, placement, order);
  }

  struct Entry {
    int map_order;
    uint64_t reg;
    DtCpu cpu;
  };
  std::vector<Entry> entries;
  for (const DtNode& n : cpus->children) {
    if (!IsCpuNode(n)) continue;
    Entry e{1 << 30, RegValue(n), {}};
    e.cpu.node_name = n.name;
    std::vector<uint32_t> ph = n.Cells("phandle");
    if (ph.size() == 1) {
      if (auto it = placement.find(ph[0]); it != placement.end()) {
        e.cpu.core.cluster = it->second.first;
        e.map_order = it->second.second;
      }
    }
    CpuCore& core = e.cpu.core;
    core.online = n.Enabled();
    std::vector<std::string> compat = n.Strings("compatible");
    if (!compat.empty()) core.model = CompatibleCoreModel(compat.front());
    for (const std::string& c : compat) {
      if (c == "riscv") e.cpu.riscv = true;
    }
    std::vector<uint32_t> dmips = n.Cells("capacity-dmips-mhz");
    if (!dmips.empty()) core.dmips_mhz = static_cast<int>(std::min<uint32_t>(dmips[0], 1 << 20));
    core.max_mhz = MaxOppMhz(n, phandles);
    entries.push_back(std::move(e));
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.map_order != b.map_order) return a.map_order < b.map_order;
    return a.reg < b.reg;
  });
  for (size_t i = 0; i < entries.size(); ++i) {
    entries[i].cpu.core.id = static_cast<int>(i);
    out.push_back(std::move(entries[i].cpu));
  }
  return out;
}

std::string ArchFromDeviceTreeCpus(const std::vector<DtCpu>& cpus) {
  for (const DtCpu& c : cpus) {
    if (c.riscv) return "riscv64";
    std::string arch = CoreArch(c.core.model);
    if (!arch.empty()) return arch;
  }
  return "";
}

CpuTopology CpuTopologyFromDeviceTree(const DtNode& root, std::vector<std::string>* warnings) {
  CpuTopology topo;
  std::vector<DtCpu> cpus = ReadDeviceTreeCpus(root);
  if (cpus.empty()) {
    if (warnings) warnings->push_back("devicetree: no /cpus/cpu nodes; CPU labels skipped");
    return topo;
  }
  topo.source = "devicetree";
  topo.arch = ArchFromDeviceTreeCpus(cpus);
  for (DtCpu& c : cpus) topo.cores.push_back(std::move(c.core));
  // The kernel only uses capacity-dmips-mhz when every CPU has it.
  bool all_dmips = std::all_of(topo.cores.begin(), topo.cores.end(),
                               [](const CpuCore& c) { return c.dmips_mhz > 0; });
  if (all_dmips) ComputeCapacityFromDmips(topo.cores);
  ClassifyCpus(topo);
  return topo;
}

}  // namespace edgefd
