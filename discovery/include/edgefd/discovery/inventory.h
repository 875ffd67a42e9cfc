#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edgefd {

/// One devicetree node that matters for labelling: an *enabled* node named `cpu`, `gpu`,
/// `npu` (or a name added with `--node`), with its compatible strings.
struct DtNodeInfo {
  std::string path;                     ///< "/cpus/cpu@0"
  std::string name;                     ///< base name without unit address: "cpu"
  std::vector<std::string> compatible;  ///< in devicetree order

  bool operator==(const DtNodeInfo&) const = default;
};

/// What the devicetree says about the board.
struct BoardInfo {
  std::string model;                    ///< root `model`, raw
  std::vector<std::string> compatible;  ///< root `compatible`, most specific first

  bool operator==(const BoardInfo&) const = default;
};

/// One logical CPU.
struct CpuCore {
  int id = -1;  ///< logical CPU number (cpuN)
  bool online = true;
  std::string model;  ///< "cortex-a72", "carmel", "intel-core-i9-12900k", "arm-0xd99"
  int capacity = 0;   ///< kernel cpu_capacity scale (largest core 1024); 0 when unknown
  int max_mhz = 0;    ///< 0 when unknown
  int cluster = -1;   ///< cluster / die id; -1 when unknown
  int package = -1;   ///< physical package id; -1 when unknown
  int core = -1;      ///< physical core id (SMT siblings share it); -1 when unknown
  int numa_node = -1;
  int dmips_mhz = 0;  ///< devicetree capacity-dmips-mhz; 0 when unknown

  bool operator==(const CpuCore&) const = default;
};

/// A class of equal cores: `big`, `mid` or `little` on heterogeneous nodes, `all` otherwise.
struct CpuClass {
  std::string name;  ///< "big", "mid", "little" (or "all" on a homogeneous node)
  std::string model;
  std::vector<int> cpus;  ///< online logical CPUs of this class, ascending
  int max_mhz = 0;
  int capacity = 0;

  bool operator==(const CpuClass&) const = default;
};

/// CPUs of the node and their classification.
struct CpuTopology {
  std::string arch;               ///< amd64, arm64, arm, riscv64 (empty when unknown)
  std::vector<CpuCore> cores;     ///< every possible CPU, online or not, by id
  std::vector<CpuClass> classes;  ///< big first; one "all" class when homogeneous
  int threads_per_core = 1;
  std::string source;  ///< "sysfs", "devicetree" or "" (nothing known)

  int OnlineCount() const;
  bool Heterogeneous() const { return classes.size() > 1; }

  bool operator==(const CpuTopology&) const = default;
};

/// An accelerator or camera found by a rule.
struct Device {
  std::string rule;        ///< rule name: "movidius-ncs", "edgetpu", "camera"
  bool camera = false;     ///< found by a `kind: camera` rule (counted as a camera)
  std::string id;          ///< stable: USB port path, PCI address or devicetree path
  std::string subsystem;   ///< "usb", "pci", "video4linux", "devicetree", ...
  std::string syspath;     ///< udev syspath or devicetree path
  std::string vendor_id;   ///< "03e7" (USB/PCI), empty for devicetree devices
  std::string product_id;  ///< "2485"
  std::string driver;
  std::string serial;   ///< USB serial number when the device has one
  std::string usb_bcd;  ///< USB bcdDevice ("0100"), empty elsewhere
  /// Versions as their sources print them (not normalised: see NormalizeSemver), empty when
  /// unknown. Driver: the kernel module's; firmware: the device's (a USB bcdDevice); runtime:
  /// a release the board carries in a file (Jetson's /etc/nv_tegra_release).
  std::string driver_version;
  std::string firmware_version;
  std::string runtime_version;
  std::vector<std::string> devnodes;  ///< /dev nodes a container needs
  int numa_node = -1;
  bool healthy = true;
  bool resource = false;  ///< the rule makes it a schedulable resource

  bool operator==(const Device&) const = default;
};

/// The node's kernel and operating system; empty strings when unknown.
struct SystemInfo {
  std::string kernel_release;  ///< "6.1.0-18-arm64" (uname -r)
  std::string os_id;           ///< os-release ID: "debian", "ubuntu"
  std::string os_version_id;   ///< os-release VERSION_ID: "12", "22.04"

  bool operator==(const SystemInfo&) const = default;
};

/// Everything edgefd knows about one node. Every binary works from this model.
struct Inventory {
  std::optional<BoardInfo> board;    ///< absent when the node has no devicetree
  std::vector<DtNodeInfo> dt_nodes;  ///< enabled cpu/gpu/npu(/--node) nodes, tree order
  CpuTopology cpu;
  std::vector<Device> devices;  ///< accelerators and cameras, by rule then id
  SystemInfo system;

  bool operator==(const Inventory&) const = default;
};

/// Labels as name → value, sorted by name.
using Labels = std::map<std::string, std::string>;

}  // namespace edgefd
