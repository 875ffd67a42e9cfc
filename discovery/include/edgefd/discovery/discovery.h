#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// Where and what to discover. Every source reads below `root`, never `/` directly.
struct DiscoveryOptions {
  std::filesystem::path root = "/";               ///< `/host` in the DaemonSet
  std::optional<std::filesystem::path> dtb;       ///< read this blob instead of the live tree
  std::vector<std::string> extra_node_names;      ///< `--node NAME`, added to cpu/gpu/npu
  std::vector<std::filesystem::path> rule_files;  ///< `--config FILE`, over the built-in rules
  /// Enumerate accelerators and cameras with libudev. libudev always reads the process's own
  /// /sys and /run/udev (umockdev redirects them in tests), so the default is on only when
  /// `root` is "/" and there is no `dtb`; the DaemonSet (root /host) passes `--udev`.
  std::optional<bool> udev;

  bool operator==(const DiscoveryOptions&) const = default;
};

/// The inventory plus what discovery had to say about it.
struct DiscoveryReport {
  Inventory inventory;
  std::vector<std::string> warnings;  ///< skipped nodes, unreadable files, ...
  std::string devicetree_source;      ///< path it came from; empty when none was found
};

/// Runs every discovery source. Fails only on bad input the user named (a `--dtb` that is
/// missing or malformed, a malformed `/sys/firmware/fdt`); missing optional sources are
/// warnings.
Result<DiscoveryReport> Discover(const DiscoveryOptions& options);

}  // namespace edgefd
