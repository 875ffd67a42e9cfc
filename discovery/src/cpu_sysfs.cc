// CPU topology of a running system: sysfs and procfs below a root directory.

#include <dirent.h>
#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <set>
#include <system_error>

#include "cpu_internal.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/discovery/cpu.h"

namespace edgefd {
namespace fs = std::filesystem;

namespace {

// Reads a whole (small, sysfs or procfs) file with plain syscalls: discovery reads dozens of
// these per node and iostreams would dominate its time. nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const fs::path& path, size_t limit = 1 << 20) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::optional<int64_t> ParseInt(std::string_view s, int base = 10) {
  s = Trim(s);
  if (base == 16 && (s.starts_with("0x") || s.starts_with("0X"))) s.remove_prefix(2);
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<int> ReadInt(const fs::path& path) {
  auto text = ReadFile(path, 64);
  if (!text) return std::nullopt;
  auto v = ParseInt(*text);
  if (!v || *v < INT32_MIN || *v > INT32_MAX) return std::nullopt;
  return static_cast<int>(*v);
}

// /proc/cpuinfo as "processor N" blocks of key → value, plus the keys outside any block.
struct CpuInfo {
  std::map<int, std::map<std::string, std::string>> processors;
  std::map<std::string, std::string> first;  ///< the first block (x86 model, arch hints)
};

CpuInfo ParseCpuInfo(std::string_view text) {
  CpuInfo info;
  std::map<std::string, std::string>* block = nullptr;
  bool in_first = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key(Trim(line.substr(0, colon)));
    std::string value(Trim(line.substr(colon + 1)));
    if (key == "processor") {
      if (auto n = ParseInt(value); n && *n >= 0 && *n < 65536) {
        if (block != nullptr) in_first = false;
        block = &info.processors[static_cast<int>(*n)];
        continue;
      }
    }
    // Later blocks only matter for ARM's per-core identity; keeping just those keys avoids
    // building a map of ~25 entries for each of a server's hundred-odd processors.
    if (block != nullptr &&
        (in_first || key == "CPU implementer" || key == "CPU part" || key == "uarch")) {
      (*block)[key] = value;
    }
    if (in_first) info.first.emplace(key, value);
  }
  return info;
}

bool HasWord(std::string_view list, std::string_view word) {
  size_t pos = 0;
  while ((pos = list.find(word, pos)) != std::string_view::npos) {
    bool start = pos == 0 || list[pos - 1] == ' ';
    bool end = pos + word.size() == list.size() || list[pos + word.size()] == ' ';
    if (start && end) return true;
    pos += word.size();
  }
  return false;
}

std::string ArchFromCpuInfo(const std::map<std::string, std::string>& first) {
  auto get = [&](const char* key) -> std::string {
    auto it = first.find(key);
    return it == first.end() ? std::string() : it->second;
  };
  if (!get("vendor_id").empty() || first.count("cpu family")) {
    return HasWord(get("flags"), "lm") ? "amd64" : "386";
  }
  std::string isa = get("isa");
  if (isa.starts_with("rv64")) return "riscv64";
  if (isa.starts_with("rv32")) return "riscv32";
  if (!get("CPU implementer").empty() || !get("CPU architecture").empty()) {
    // A 32-bit kernel lists ARMv7 features (thumb, half); an arm64 one lists fp/asimd.
    std::string features = get("Features");
    std::string name = get("model name") + get("Processor");
    if (HasWord(features, "thumb") || HasWord(features, "half") ||
        name.find("(v7") != std::string::npos || name.find("(v6") != std::string::npos) {
      return "arm";
    }
    return "arm64";
  }
  return "";
}

std::string UnameArch() {
  struct utsname u {};
  if (::uname(&u) != 0) return "";
  return NormalizeArch(u.machine);
}

bool IsLiveRoot(const fs::path& root) {
  std::error_code ec;
  return root == "/" || fs::equivalent(root, "/", ec);
}

// Parses "0x00000000410fd034" into (implementer, part); nullopt for anything else.
std::optional<std::pair<uint32_t, uint32_t>> ParseMidr(std::string_view text) {
  auto v = ParseInt(text, 16);
  if (!v || *v < 0 || *v > 0xffffffffLL) return std::nullopt;
  uint32_t midr = static_cast<uint32_t>(*v);
  uint32_t implementer = (midr >> 24) & 0xff;
  if (implementer == 0) return std::nullopt;
  return std::make_pair(implementer, (midr >> 4) & 0xfff);
}

std::optional<std::pair<uint32_t, uint32_t>> CpuInfoMidr(
    const std::map<std::string, std::string>& block) {
  auto impl = block.find("CPU implementer");
  auto part = block.find("CPU part");
  if (impl == block.end() || part == block.end()) return std::nullopt;
  auto i = ParseInt(impl->second, 16);
  auto p = ParseInt(part->second, 16);
  if (!i || !p || *i <= 0 || *i > 0xff || *p < 0 || *p > 0xfff) return std::nullopt;
  return std::make_pair(static_cast<uint32_t>(*i), static_cast<uint32_t>(*p));
}

std::vector<int> EnumerateCpuDirs(const fs::path& base) {
  std::vector<int> ids;
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return ids;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (!name.starts_with("cpu") || name.size() == 3) continue;
    if (auto n = ParseInt(name.substr(3)); n && *n >= 0 && *n < 65536)
      ids.push_back(static_cast<int>(*n));
  }
  ::closedir(dir);
  std::sort(ids.begin(), ids.end());
  return ids;
}

// NUMA node of each CPU from sys/devices/system/node/nodeN/cpulist.
std::map<int, int> ReadNumaNodes(const fs::path& root) {
  std::map<int, int> node_of;
  fs::path base = root / "sys/devices/system/node";
  DIR* dir = ::opendir(base.c_str());
  if (dir == nullptr) return node_of;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name = e->d_name;
    if (!name.starts_with("node") || name.size() == 4) continue;
    auto n = ParseInt(name.substr(4));
    if (!n || *n < 0 || *n > 65535) continue;
    auto text = ReadFile(base / e->d_name / "cpulist", 4096);
    if (!text) continue;
    if (auto cpus = ParseCpuList(*text)) {
      for (int c : *cpus) node_of[c] = static_cast<int>(*n);
    }
  }
  ::closedir(dir);
  return node_of;
}

std::string Where(const fs::path& p) { return p.string(); }

// A garbled file's first bytes, printable, for a warning.
std::string Excerpt(std::string_view raw) {
  std::string out;
  for (unsigned char c : Trim(raw.substr(0, 32)))
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

// Fills what sysfs lacks from the devicetree's /cpus, matching cpuN to its node through the
// cpuN/of_node link or, without one, by position.
void FillFromDeviceTree(const fs::path& cpu_base, const DtNode& tree, CpuTopology& topo) {
  std::vector<DtCpu> dt = ReadDeviceTreeCpus(tree);
  if (dt.empty()) return;
  std::map<std::string, const DtCpu*> by_name;
  for (const DtCpu& d : dt) by_name[d.node_name] = &d;
  for (size_t i = 0; i < topo.cores.size(); ++i) {
    CpuCore& core = topo.cores[i];
    const DtCpu* match = nullptr;
    std::error_code ec;
    fs::path link = fs::read_symlink(cpu_base / ("cpu" + std::to_string(core.id)) / "of_node", ec);
    if (!ec) {
      auto it = by_name.find(link.filename().string());
      if (it != by_name.end()) match = it->second;
    }
    if (match == nullptr && i < dt.size()) match = &dt[i];
    if (match == nullptr) continue;
    if (core.model.empty()) core.model = match->core.model;
    if (core.max_mhz == 0) core.max_mhz = match->core.max_mhz;
    if (core.cluster < 0) core.cluster = match->core.cluster;
    core.dmips_mhz = match->core.dmips_mhz;
  }
  if (topo.arch.empty()) topo.arch = ArchFromDeviceTreeCpus(dt);
}

// True when the kernel's capacities say nothing: missing, or its default of 1024 on every
// core of a node whose cores are not all the same model.
bool CapacitiesMissing(const std::vector<CpuCore>& cores) {
  std::set<std::string> models;
  bool all_default = true;
  for (const CpuCore& c : cores) {
    if (!c.online) continue;
    if (c.capacity <= 0) return true;
    if (c.capacity != 1024) all_default = false;
    models.insert(c.model);
  }
  return all_default && models.size() > 1;
}

}  // namespace

namespace {

using Warn = std::function<void(std::string)>;

// The possible CPUs: `possible`, else the cpuN directories.
std::vector<int> PossibleCpus(const fs::path& base, const Warn& warn) {
  if (auto text = ReadFile(base / "possible", 65536)) {
    if (auto list = ParseCpuList(*text)) {
      if (!list->empty()) return *list;
    } else {
      warn(Where(base / "possible") + ": not a CPU list; using the cpuN directories");
    }
  }
  return EnumerateCpuDirs(base);
}

// The online CPUs, when `online` says (else each cpuN/online does).
std::optional<std::vector<int>> OnlineCpus(const fs::path& base, const Warn& warn) {
  auto text = ReadFile(base / "online", 65536);
  if (!text) return std::nullopt;
  auto online = ParseCpuList(*text);
  if (!online) warn(Where(base / "online") + ": not a CPU list; treating every CPU as online");
  return online;
}

// What cpuN's own directory says: online, capacity, topology ids, max frequency.
CpuCore ReadCoreFacts(int id, const fs::path& dir, const std::optional<std::vector<int>>& online) {
  CpuCore core;
  core.id = id;
  if (online) {
    core.online = std::binary_search(online->begin(), online->end(), id);
  } else if (auto flag = ReadInt(dir / "online")) {
    core.online = *flag != 0;
  }
  core.capacity = ReadInt(dir / "cpu_capacity").value_or(0);
  core.cluster = ReadInt(dir / "topology/cluster_id").value_or(-1);
  core.package = ReadInt(dir / "topology/physical_package_id").value_or(-1);
  core.core = ReadInt(dir / "topology/core_id").value_or(-1);
  if (auto khz = ReadInt(dir / "cpufreq/cpuinfo_max_freq"); khz && *khz > 0) {
    core.max_mhz = *khz / 1000;
  }
  return core;
}

// SMT threads of an online core: how many CPUs share it.
int ThreadsOfCore(const fs::path& dir) {
  std::optional<std::string> siblings = ReadFile(dir / "topology/core_cpus_list", 4096);
  if (!siblings) siblings = ReadFile(dir / "topology/thread_siblings_list", 4096);
  if (!siblings) return 1;
  auto list = ParseCpuList(*siblings);
  return list && !list->empty() ? static_cast<int>(list->size()) : 1;
}

// The CPU-wide facts of /proc/cpuinfo the per-core reading needs.
struct CpuInfoFacts {
  CpuInfo cpuinfo;
  bool x86 = false;
  std::string x86_model;  // "intel-core-i9-12900k"
};

CpuInfoFacts ReadCpuInfoFacts(const fs::path& root) {
  CpuInfoFacts f;
  f.cpuinfo = ParseCpuInfo(ReadFile(root / "proc/cpuinfo", 4 << 20).value_or(""));
  f.x86 = f.cpuinfo.first.count("vendor_id") > 0;
  if (f.x86) {
    if (auto it = f.cpuinfo.first.find("model name"); it != f.cpuinfo.first.end()) {
      f.x86_model = X86ModelName(it->second);
    }
  }
  return f;
}

// A core's model: its MIDR register, then /proc/cpuinfo's implementer/part (or RISC-V
// uarch), then the x86 model name; "" when none says (the devicetree may, later).
// `from_midr` is set when the MIDR register was read.
std::string CoreModel(int id, const fs::path& dir, const CpuInfoFacts& facts, const Warn& warn,
                      bool* from_midr) {
  if (auto midr_text =
          facts.x86 ? std::nullopt : ReadFile(dir / "regs/identification/midr_el1", 64)) {
    if (auto midr = ParseMidr(*midr_text)) {
      *from_midr = true;
      return ArmCoreModel(midr->first, midr->second);
    }
    warn(Where(dir / "regs/identification/midr_el1") + ": not a MIDR value ('" +
         Excerpt(*midr_text) + "'); using /proc/cpuinfo");
  }
  if (auto it = facts.cpuinfo.processors.find(id); it != facts.cpuinfo.processors.end()) {
    if (auto midr = CpuInfoMidr(it->second)) return ArmCoreModel(midr->first, midr->second);
    if (auto uarch = it->second.find("uarch"); uarch != it->second.end()) {
      return CompatibleCoreModel(uarch->second);  // RISC-V: "sifive,u74-mc"
    }
  }
  return facts.x86 ? facts.x86_model : std::string();
}

// Intel hybrid: the PMU devices list which CPUs are performance and which efficiency cores.
void ApplyIntelHybrid(const fs::path& root, const CpuInfo& cpuinfo, CpuTopology& topo,
                      const Warn& warn) {
  auto core_cpus = ReadFile(root / "sys/devices/cpu_core/cpus", 65536);
  auto atom_cpus = ReadFile(root / "sys/devices/cpu_atom/cpus", 65536);
  if (!core_cpus || !atom_cpus) return;
  auto p = ParseCpuList(*core_cpus);
  auto e = ParseCpuList(*atom_cpus);
  if (!p || !e) {
    warn(Where(root / "sys/devices/cpu_core/cpus") + " or cpu_atom/cpus: not a CPU list");
    return;
  }
  auto field = [&cpuinfo](const char* key) {
    auto it = cpuinfo.first.find(key);
    return static_cast<int>(ParseInt(it == cpuinfo.first.end() ? "" : it->second).value_or(0));
  };
  auto names = IntelHybridCoreNames(field("cpu family"), field("model"));
  const std::string p_name = names ? names->first : "intel-p-core";
  const std::string e_name = names ? names->second : "intel-e-core";
  for (CpuCore& c : topo.cores) {
    if (std::binary_search(p->begin(), p->end(), c.id)) c.model = p_name;
    if (std::binary_search(e->begin(), e->end(), c.id)) c.model = e_name;
  }
}

// The architecture as the running system says it: uname on a live root, else /proc/cpuinfo,
// else a MIDR register (only arm64 has one); "" when none does (the devicetree, then the core
// models, may tell).
std::string SystemArch(const fs::path& root, const CpuInfo& cpuinfo, bool any_midr) {
  std::string arch = IsLiveRoot(root) ? UnameArch() : "";
  if (arch.empty()) arch = ArchFromCpuInfo(cpuinfo.first);
  if (arch.empty() && any_midr) arch = "arm64";
  return arch;
}

}  // namespace

CpuTopology ReadCpuTopology(const fs::path& root, const DtNode* devicetree,
                            std::vector<std::string>* warnings) {
  const Warn warn = [warnings](std::string w) {
    if (warnings) warnings->push_back(std::move(w));
  };
  const fs::path base = root / "sys/devices/system/cpu";
  const std::vector<int> possible = PossibleCpus(base, warn);
  if (possible.empty()) {
    if (devicetree != nullptr) return CpuTopologyFromDeviceTree(*devicetree, warnings);
    return {};
  }
  const std::optional<std::vector<int>> online = OnlineCpus(base, warn);
  const CpuInfoFacts facts = ReadCpuInfoFacts(root);
  const std::map<int, int> numa = ReadNumaNodes(root);

  CpuTopology topo;
  topo.source = "sysfs";
  bool any_midr = false;
  for (int id : possible) {
    const fs::path dir = base / ("cpu" + std::to_string(id));
    CpuCore core = ReadCoreFacts(id, dir, online);
    if (auto it = numa.find(id); it != numa.end()) core.numa_node = it->second;
    if (core.online) topo.threads_per_core = std::max(topo.threads_per_core, ThreadsOfCore(dir));
    core.model = CoreModel(id, dir, facts, warn, &any_midr);
    topo.cores.push_back(std::move(core));
  }
  ApplyIntelHybrid(root, facts.cpuinfo, topo, warn);
  topo.arch = SystemArch(root, facts.cpuinfo, any_midr);
  if (devicetree != nullptr) {
    // What sysfs lacks (models, capacity, frequencies, clusters) from the devicetree.
    FillFromDeviceTree(base, *devicetree, topo);
    bool all_dmips = std::all_of(topo.cores.begin(), topo.cores.end(),
                                 [](const CpuCore& c) { return c.dmips_mhz > 0; });
    if (CapacitiesMissing(topo.cores) && all_dmips) ComputeCapacityFromDmips(topo.cores);
  }
  for (const CpuCore& c : topo.cores) {
    if (topo.arch.empty()) topo.arch = CoreArch(c.model);
  }
  ClassifyCpus(topo);
  return topo;
}

}  // namespace edgefd
