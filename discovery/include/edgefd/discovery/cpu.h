#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// Reads the CPU topology of a running system below `root` (`sys/devices/system/cpu`,
/// `proc/cpuinfo`, Intel hybrid `sys/devices/cpu_core|cpu_atom/cpus`, NUMA nodes) and
/// classifies it. Data sysfs lacks (core model, capacity, max frequency, cluster) is taken
/// from `devicetree` when given. The architecture comes from `proc/cpuinfo`, or from
/// `uname` only when `root` is `/`. Never fails: unreadable or garbled files are skipped with
/// a warning naming the file, and a root without CPU information gives an empty topology.
CpuTopology ReadCpuTopology(const std::filesystem::path& root, const DtNode* devicetree,
                            std::vector<std::string>* warnings);

/// The CPU topology from a devicetree alone (the `--dtb` mode): enabled `/cpus/cpu@N` nodes
/// (`compatible`, `capacity-dmips-mhz`, the highest `opp-hz` of the `operating-points-v2`
/// table, `cpu-map` clusters), classified. CPUs are numbered in `cpu-map` order, then by
/// `reg`, which is the order Linux gives them on boards whose boot CPU comes first.
CpuTopology CpuTopologyFromDeviceTree(const DtNode& root, std::vector<std::string>* warnings);

/// Groups the online cores by (model, capacity), ranks the groups and fills
/// `topology.classes` (big first; "all" when there is one group) and `threads_per_core`.
/// Intel hybrid topologies arrive with their models already split by core type.
void ClassifyCpus(CpuTopology& topology);

/// Capacities computed the way the kernel computes `cpu_capacity`: dmips/MHz × max MHz,
/// normalised so the largest core is 1024 (rounded down). Cores without dmips get 0; when a
/// core lacks a max frequency, dmips alone are normalised.
void ComputeCapacityFromDmips(std::vector<CpuCore>& cores);

/// Core identity tables (facts, kept as data in cpu_tables.cc).
/// An ARM MIDR implementer/part pair as a model name: (0x41, 0xd08) → "cortex-a72",
/// (0x4e, 0x004) → "carmel"; unknown parts keep their hex id ("arm-0xd99", "impl-0x99-0x123").
std::string ArmCoreModel(uint32_t implementer, uint32_t part);
/// A devicetree cpu `compatible` as a model name: "arm,cortex-a72" → "cortex-a72",
/// "nvidia,tegra194-carmel" → "carmel".
std::string CompatibleCoreModel(std::string_view compatible);
/// Rough integer performance per MHz of a core model, used only to rank classes when the
/// kernel gives no capacities; 0 when unknown.
int CorePerfPerMhz(std::string_view model);
/// The architecture a core model implies ("arm" for ARMv7 cores, "arm64" for ARMv8+ ones,
/// "riscv64"), or "" when the table does not know it.
std::string CoreArch(std::string_view model);
/// Intel hybrid (family 6) model numbers → P-core and E-core microarchitecture names.
std::optional<std::pair<std::string, std::string>> IntelHybridCoreNames(int family, int model);
/// An x86 `model name` as a label-friendly model: "13th Gen Intel(R) Core(TM) i5-13600K" →
/// "intel-core-i5-13600k", "Intel(R) Xeon(R) Silver 4208 CPU @ 2.10GHz" →
/// "intel-xeon-silver-4208".
std::string X86ModelName(std::string_view model_name);
/// `uname -m` style machine names as Kubernetes arch names (x86_64 → amd64, aarch64 → arm64).
std::string NormalizeArch(std::string_view machine);

/// The CPUs of each class, big first, then "offline" when CPUs are offline (what the dry run's
/// JSON output lists under "cpus"); empty when nothing is known.
std::vector<std::pair<std::string, std::vector<int>>> CpuClassLists(const CpuTopology& topology);

}  // namespace edgefd
