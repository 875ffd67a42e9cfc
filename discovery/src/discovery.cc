#include "edgefd/discovery/discovery.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <system_error>

#include "edgefd/common/files.h"
#include "edgefd/common/hash.h"
#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/udev.h"

namespace edgefd {
namespace fs = std::filesystem;

namespace {

// The properties discovery reads; a live tree has thousands of property files and reading
// only these keeps a DaemonSet rescan cheap.
bool DiscoveryProperty(std::string_view name) {
  static constexpr std::string_view kNames[] = {"compatible",
                                                "status",
                                                "model",
                                                "device_type",
                                                "reg",
                                                "phandle",
                                                "linux,phandle",
                                                "capacity-dmips-mhz",
                                                "operating-points-v2",
                                                "operating-points",
                                                "opp-hz",
                                                "opp-supported-hw",
                                                "clock-frequency",
                                                "cpu",
                                                "numa-node-id",
                                                "#address-cells",
                                                "#size-cells",
                                                "enable-method"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

// Read late in a live tree, where most nodes have them and only CPU nodes and OPP tables
// need them: `reg` (a CPU's id), `phandle` (what cpu-map and operating-points-v2 point at).
bool LateDiscoveryProperty(std::string_view name) {
  return name == "reg" || name == "phandle" || name == "linux,phandle";
}

bool NeedsLateDiscoveryProperty(const DtNode& node, std::string_view name) {
  std::optional<std::string> type = node.String("device_type");
  bool cpu = type ? *type == "cpu" : node.BaseName() == "cpu";
  if (cpu) return true;
  if (name == "reg") return false;
  // An OPP table: only its `opp-hz` entries give a CPU a frequency.
  return std::any_of(node.children.begin(), node.children.end(),
                     [](const DtNode& c) { return c.Property("opp-hz") != nullptr; });
}

DtLimits DiscoveryReadOptions() {
  DtLimits limits;
  limits.keep_property = DiscoveryProperty;
  limits.defer_property = LateDiscoveryProperty;
  limits.keep_deferred = NeedsLateDiscoveryProperty;
  return limits;
}

// Finds and reads the devicetree: --dtb, else the live directory tree, else the kernel's
// flattened copy. Returns nullopt (not an error) when the node has none, as on x86.
Result<std::optional<DtNode>> LoadDeviceTree(const DiscoveryOptions& options,
                                             DiscoveryReport& report) {
  if (options.dtb) {
    auto tree = ReadDeviceTreeBlobFile(*options.dtb, DiscoveryReadOptions());
    if (!tree) return tree.error();
    report.devicetree_source = options.dtb->string();
    return std::optional<DtNode>(std::move(*tree));
  }
  std::error_code ec;
  fs::path live = options.root / "sys/firmware/devicetree/base";
  if (fs::is_directory(live, ec)) {
    auto tree = ReadDeviceTreeDir(live, &report.warnings, DiscoveryReadOptions());
    if (!tree) return tree.error();
    report.devicetree_source = live.string();
    return std::optional<DtNode>(std::move(*tree));
  }
  fs::path blob = options.root / "sys/firmware/fdt";
  if (fs::exists(blob, ec)) {
    auto tree = ReadDeviceTreeBlobFile(blob, DiscoveryReadOptions());
    if (!tree) return tree.error();
    report.devicetree_source = blob.string();
    return std::optional<DtNode>(std::move(*tree));
  }
  return std::optional<DtNode>();
}

// What identifies a file or directory without reading it (a directory's size is 0 in sysfs
// and counts entries elsewhere: only a file's is used).
std::string Identity(const fs::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "-";
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + ":" +
         std::to_string(S_ISDIR(st.st_mode) ? 0 : st.st_size) + ":" +
         std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
}

// The overlays configfs has applied: "NAME=STATUS;..." in name order (a handful of entries, a
// few syscalls; "" where configfs has no devicetree overlay support).
std::string ConfigfsOverlays(const fs::path& root) {
  std::error_code ec;
  std::vector<std::string> entries;
  for (fs::directory_iterator it(root / "sys/kernel/config/device-tree/overlays", ec), end;
       !ec && it != end; it.increment(ec)) {
    std::string status;
    std::ifstream in(it->path() / "status");
    std::getline(in, status);
    entries.push_back(it->path().filename().string() + "=" + status);
  }
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const std::string& e : entries) out += e + ";";
  return out;
}

// Cheap to compute, and different whenever the devicetree Discover would read can differ.
std::string TreeGeneration(const DiscoveryOptions& options) {
  if (options.dtb) return "dtb " + Identity(*options.dtb);
  std::error_code ec;
  fs::path live = options.root / "sys/firmware/devicetree/base";
  if (fs::is_directory(live, ec)) {
    return "live " + Identity(live) + " " + ConfigfsOverlays(options.root);
  }
  return "fdt " + Identity(options.root / "sys/firmware/fdt");
}

double NowUnix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// FNV-1a 64 over every file's name and contents: which version of the files is on disk.
std::string RulesHash(const std::vector<RulesSource>& sources) {
  uint64_t h = kFnv1a64Start;
  auto add = [&h](std::string_view bytes) {
    h = Fnv1a64(bytes, h);
    h = Fnv1a64("\xff", h);  // a separator no text contains
  };
  for (const RulesSource& s : sources) {
    add(s.name);
    add(s.text);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

}  // namespace

// The rules in force and the version of the files they came from.
struct Discoverer::Rules {
  std::vector<Rule> rules;
  RulesStatus status;
  std::string rejected_hash;  // the last version refused, so it is counted once
};

// What Run keeps of the devicetree between runs.
struct Discoverer::Cache {
  bool valid = false;
  std::string generation;
  std::optional<DtNode> tree;
  std::string source;
  std::vector<std::string> warnings;  // the tree's, repeated in every report
  BoardInfo board;
  std::vector<DtNodeInfo> dt_nodes;
  std::optional<CpuTopology> dtb_cpu;  // --dtb: the CPUs come from the tree alone
  uint64_t reads = 0;
};

Discoverer::Discoverer(DiscoveryOptions options)
    : options_(std::move(options)), cache_(std::make_unique<Cache>()) {}

Status Discoverer::LoadRulesIfChanged() {
  std::vector<RulesSource> sources;
  std::string unreadable;
  for (const auto& file : options_.rule_files) {
    auto text = ReadFileAtMost(file, kMaxRulesBytes, "rules file");
    if (!text) {
      unreadable = text.error().message;
      break;
    }
    sources.push_back({file.string(), std::move(*text)});
  }
  // A missing file hashes as its error: the same absence is one refused version.
  const std::string hash = unreadable.empty() ? RulesHash(sources) : RulesHash({{unreadable, ""}});
  if (rules_ && hash == rules_->status.hash) {
    rules_->status.error.clear();
    rules_->rejected_hash.clear();
    return Ok{};
  }
  Result<std::vector<Rule>> loaded =
      unreadable.empty() ? MergeRuleSources(sources) : Result<std::vector<Rule>>(Error{unreadable});
  if (!loaded) {
    if (!rules_) return loaded.error();  // at start: the user's input to fix
    if (hash != rules_->rejected_hash) {
      ++rules_->status.rejected;
      rules_->rejected_hash = hash;
    }
    rules_->status.error = loaded.error().message;
    return Ok{};
  }
  if (!rules_) rules_ = std::make_unique<Rules>();
  rules_->rules = std::move(*loaded);
  rules_->status.hash = hash;
  rules_->status.loaded_unix = NowUnix();
  ++rules_->status.generation;
  rules_->status.error.clear();
  rules_->rejected_hash.clear();
  return Ok{};
}

Discoverer::~Discoverer() = default;

void Discoverer::Invalidate() { cache_->valid = false; }

uint64_t Discoverer::devicetree_reads() const { return cache_->reads; }

Result<DiscoveryReport> Discoverer::Run() {
  // A root that is not there would read as a board with nothing on it: an empty success that
  // hides a typo. (With --dtb the blob is the board and the root may be anything.)
  if (!options_.dtb) {
    std::error_code ec;
    if (!fs::is_directory(options_.root, ec)) {
      return Error{options_.root.string() + ": " +
                   (fs::exists(options_.root, ec) ? "not a directory" : "no such directory") +
                   " (--root names the directory holding the host's sys/ and proc/)"};
    }
  }
  if (Status rules = LoadRulesIfChanged(); !rules) return rules.error();
  Cache& c = *cache_;
  std::string generation = TreeGeneration(options_);
  if (!c.valid || generation != c.generation) {
    DiscoveryReport read;
    auto tree = LoadDeviceTree(options_, read);
    if (!tree) return tree.error();
    ++c.reads;
    c.tree = std::move(*tree);
    c.source = std::move(read.devicetree_source);
    c.warnings = std::move(read.warnings);
    c.board = {};
    c.dt_nodes.clear();
    c.dtb_cpu.reset();
    if (c.tree) {
      c.board = ExtractBoard(*c.tree);
      std::vector<std::string> names = DefaultDtNodeNames();
      names.insert(names.end(), options_.extra_node_names.begin(), options_.extra_node_names.end());
      c.dt_nodes = ExtractNamedNodes(*c.tree, names);
    }
    // A --dtb describes some other board: never mix in this host's sysfs.
    if (options_.dtb) c.dtb_cpu = CpuTopologyFromDeviceTree(*c.tree, &c.warnings);
    c.generation = std::move(generation);
    c.valid = true;
  }
  DiscoveryReport report;
  report.devicetree_source = c.source;
  report.warnings = c.warnings;
  Inventory& inv = report.inventory;
  inv.board = c.board;
  inv.dt_nodes = c.dt_nodes;
  inv.cpu = c.dtb_cpu
                ? *c.dtb_cpu
                : ReadCpuTopology(options_.root, c.tree ? &*c.tree : nullptr, &report.warnings);
  // Accelerators and cameras: udev devices merged with the devicetree nodes read above.
  DiscoverUdevDevices(options_, rules_->rules, report);
  report.rules = rules_->status;
  report.udev_subsystems = UdevSubsystems(rules_->rules);
  return report;
}

Result<DiscoveryReport> Discover(const DiscoveryOptions& options) {
  return Discoverer(options).Run();
}

}  // namespace edgefd
