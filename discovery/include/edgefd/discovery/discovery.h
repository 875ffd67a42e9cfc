#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
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

/// The rules a Discoverer applies, and what became of the latest version of the files.
struct RulesStatus {
  /// 1 for the rules loaded first; +1 each time changed files were loaded.
  uint64_t generation = 0;
  /// FNV-1a 64 of the files in force (names and contents), 16 hex digits; of "" without files.
  std::string hash;
  double loaded_unix = 0;  ///< when the rules in force were loaded (seconds since the epoch)
  /// Versions of the files refused since start (each broken or missing version counted once,
  /// however many runs see it).
  uint64_t rejected = 0;
  /// Why the files as they are now are not in force ("rules.yaml:12: rule 'x': unknown key
  /// ..."; a deleted file); "" when they are.
  std::string error;

  bool operator==(const RulesStatus&) const = default;
};

/// The inventory plus what discovery had to say about it.
struct DiscoveryReport {
  Inventory inventory;
  std::vector<std::string> warnings;  ///< skipped nodes, unreadable files, ...
  std::string devicetree_source;      ///< path it came from; empty when none was found
  RulesStatus rules;
  /// The udev subsystems the rules in force need watched (UdevSubsystems): a reload that
  /// names a new one widens the hotplug watcher's filter (RulesReload::Observe).
  std::vector<std::string> udev_subsystems;
};

/// Runs every discovery source. Fails only on bad input the user named (a `--dtb` that is
/// missing or malformed, a malformed `/sys/firmware/fdt`); missing optional sources are
/// warnings. One run of a fresh Discoverer.
Result<DiscoveryReport> Discover(const DiscoveryOptions& options);

/// Discovery for a program that runs it again on every hardware event (the labeller agent,
/// `--dry-run --watch`, the device plugin). A USB hotplug cannot change the devicetree, and
/// walking a live tree costs milliseconds (thousands of directories on a Jetson), so Run keeps
/// the parsed tree and what it yields, and reads it again only when it can have changed:
///  - `--dtb` and `/sys/firmware/fdt`: the file was replaced (inode, size or mtime);
///  - the live tree (`/sys/firmware/devicetree/base`): an overlay was applied or removed
///    through configfs (`ROOT/sys/kernel/config/device-tree/overlays/NAME/status`, how Raspberry
///    Pi OS and vendor kernels load overlays), or the directory itself was replaced. sysfs sends
///    no inotify events for what the kernel changes, so an overlay applied another way (by a
///    driver) is seen after Invalidate (the labeller calls it at every --resync);
///  - Invalidate() was called.
/// CPU topology (CPUs go on- and offline), udev devices and rules files are read on every Run.
/// Rules files are parsed again only when their contents changed. A change that does not load
/// (a syntax error, an unknown key, a deleted file) keeps the rules loaded before in force and
/// says why in DiscoveryReport::rules; only the first Run fails on bad rules (the user's input
/// at start). Not thread-safe: one caller at a time.
class Discoverer {
 public:
  explicit Discoverer(DiscoveryOptions options);
  ~Discoverer();
  Discoverer(const Discoverer&) = delete;
  Discoverer& operator=(const Discoverer&) = delete;

  /// What Discover(options) returns, from the kept devicetree when it cannot have changed.
  Result<DiscoveryReport> Run();
  /// The next Run reads the devicetree again, whatever the signals say.
  void Invalidate();
  /// How many times Run has read (walked or parsed) the devicetree: tests, benchmarks.
  uint64_t devicetree_reads() const;

 private:
  struct Cache;
  struct Rules;
  DiscoveryOptions options_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<Rules> rules_;  // null until rules first loaded

  Status LoadRulesIfChanged();
};

}  // namespace edgefd
