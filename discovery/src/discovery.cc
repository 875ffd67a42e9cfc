#include "edgefd/discovery/discovery.h"

#include <algorithm>
#include <system_error>

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

}  // namespace

Result<DiscoveryReport> Discover(const DiscoveryOptions& options) {
  DiscoveryReport report;
  auto tree = LoadDeviceTree(options, report);
  if (!tree) return tree.error();
  Inventory& inv = report.inventory;
  if (*tree) {
    const DtNode& root = **tree;
    inv.board = ExtractBoard(root);
    std::vector<std::string> names = DefaultDtNodeNames();
    names.insert(names.end(), options.extra_node_names.begin(), options.extra_node_names.end());
    inv.dt_nodes = ExtractNamedNodes(root, names);
  }
  // A --dtb describes some other board: never mix in this host's sysfs.
  const DtNode* dt = *tree ? &**tree : nullptr;
  inv.cpu = options.dtb ? CpuTopologyFromDeviceTree(*dt, &report.warnings)
                        : ReadCpuTopology(options.root, dt, &report.warnings);
  // Accelerators and cameras: udev devices merged with the devicetree nodes read above.
  if (auto status = DiscoverUdevDevices(options, report); !status) return status.error();
  return report;
}

}  // namespace edgefd
