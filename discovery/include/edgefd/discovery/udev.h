#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/inventory.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/watch.h"

namespace edgefd {

/// One udev device with the facts rules match on. Ids are lower-case hex without "0x".
struct UdevRecord {
  std::string syspath;                  ///< "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2"
  std::string subsystem;                ///< "usb", "pci", "video4linux", "apex", ...
  std::string devtype;                  ///< "usb_device", "usb_interface", ... or ""
  std::string devnode;                  ///< "/dev/bus/usb/001/003" or ""
  std::string driver;                   ///< bound driver of this device, or ""
  std::string usb_vendor, usb_product;  ///< of the nearest USB device (self or ancestor)
  std::string usb_serial;               ///< its `serial` attribute, when it has one
  std::string usb_bcd;                  ///< its `bcdDevice` ("0100"), when it has one
  std::string pci_vendor, pci_product;  ///< of the nearest PCI function (self or ancestor)
  std::string pci_class;                ///< "030000"
  std::map<std::string, std::string> properties;  ///< udev properties (ID_V4L_CAPABILITIES...)

  /// The physical device this one belongs to: the nearest USB device, PCI function or
  /// devicetree-backed platform device (self or ancestor); the device itself otherwise.
  /// `anchor_id` is the stable device ID: USB port path ("1-2"), PCI address
  /// ("0000:01:00.0") or devicetree path ("/gpu@57000000").
  std::string anchor_id;
  std::string anchor_syspath;
  std::string anchor_subsystem;  ///< "usb", "pci", "platform", ...
  std::string anchor_driver;
  int numa_node = -1;  ///< of the PCI function; -1 when unknown
};

/// The udev subsystems enumerated and watched: usb, pci, video4linux, misc, drm, accel and
/// the accelerator drivers' classes (apex, gasket, hailo_chardev), plus any subsystem the
/// rules name literally.
std::vector<std::string> UdevSubsystems(const std::vector<Rule>& rules);

/// Enumerates the devices of `subsystems` (all when empty) with libudev. Devices that vanish
/// while being read are skipped. With `rules`, a virtual device (/sys/devices/virtual/...)
/// that no rule can match and whose /dev node no rule names is left out, as MatchDevices()
/// would drop it. Fails only when libudev cannot be used at all.
Result<std::vector<UdevRecord>> EnumerateUdev(const std::vector<std::string>& subsystems,
                                              const std::vector<Rule>* rules = nullptr);

/// Applies the rules to udev devices and enabled devicetree nodes. A device matched several
/// times by one rule (a PCI function and its /dev child, a camera's capture and metadata
/// nodes, a devicetree node and its platform device) is one Device with the anchor's stable
/// ID. Sorted by rule name, then ID. Pure: no I/O.
std::vector<Device> MatchDevices(const std::vector<Rule>& rules,
                                 const std::vector<UdevRecord>& records,
                                 const std::vector<DtNodeInfo>& dt_nodes);

/// Warnings for rules whose `dt-node` names a node discovery does not scan (cpu, gpu, npu and
/// `extra_node_names` are): such an alternative can never match. Each names the rule's origin.
std::vector<std::string> UnscannedDtNodes(const std::vector<Rule>& rules,
                                          const std::vector<std::string>& extra_node_names);

/// `--explain`: per rule and per `match` alternative, the devices it matched (stable IDs) or,
/// when it matched none, the candidate that came nearest and the key that candidate failed
/// ("nearest /gpu@38000000: dt-node is gpu, wants npu"). Pure: no I/O.
std::string ExplainMatches(const std::vector<Rule>& rules, const std::vector<UdevRecord>& records,
                           const std::vector<DtNodeInfo>& dt_nodes);
/// ExplainMatches for what `options` discovers: the rules it loads, the udev devices it
/// enumerates (when it does) and the devicetree nodes already in `inventory`.
Result<std::string> ExplainDiscovery(const DiscoveryOptions& options, const Inventory& inventory);

/// Whether Discover() enumerates udev for these options: `options.udev`, by default on only
/// when `root` is "/" and there is no `dtb`.
bool UsesUdev(const DiscoveryOptions& options);

/// The accelerator/camera source of Discover(): loads the rules (built-in + `rule_files`;
/// a bad file is an error), enumerates udev when `options.udev` says so and fills
/// `report.inventory.devices` from udev and the already-read devicetree nodes, with their
/// versions (read below `root`; not for a `dtb`, some other board) and `inventory.system`.
Status DiscoverUdevDevices(const DiscoveryOptions& options, DiscoveryReport& report);
/// The same with rules already loaded (the Discoverer keeps them between runs).
void DiscoverUdevDevices(const DiscoveryOptions& options, const std::vector<Rule>& rules,
                         DiscoveryReport& report);

/// How a HotplugWatcher watches.
struct WatchOptions {
  /// Subsystems whose events matter (UdevSubsystems(rules)); empty means all.
  std::vector<std::string> subsystems;
  /// A burst ends after this long without another event...
  std::chrono::milliseconds quiet{5};
  /// ...or this long after its first event, whichever comes first.
  std::chrono::milliseconds max_delay{50};
  /// Fallback rescan period when the netlink monitor cannot run; 0: never rescan.
  std::chrono::milliseconds rescan{std::chrono::seconds(30)};
  /// false: do not try the netlink monitor (as in a container without netlink).
  bool netlink = true;
};

/// Watches for hardware changes: a libudev monitor on the netlink socket ("udev" events)
/// when it can be opened; otherwise a periodic rescan that compares a fingerprint of the
/// udev devices and reports only real changes. `on_change` runs on the watcher's own
/// thread once per coalesced burst; consumers re-run Discover() and diff the result
/// (labeller reconcile loop, device plugin ListAndWatch).
///
///   HotplugWatcher watcher(options);
///   watcher.Start([&] { queue.Notify(); });  // no netlink: falls back, does not fail
///   if (!watcher.warning().empty()) log(watcher.warning());
class HotplugWatcher final : public ChangeSource {
 public:
  explicit HotplugWatcher(WatchOptions options);
  ~HotplugWatcher() override;
  HotplugWatcher(const HotplugWatcher&) = delete;
  HotplugWatcher& operator=(const HotplugWatcher&) = delete;

  /// Fails only when already started or out of file descriptors; a missing netlink socket
  /// is not a failure (see warning()).
  Status Start(std::function<void()> on_change) override;
  /// Idempotent; no callback runs after it returns. The destructor calls it.
  void Stop() override;

  /// Follows other subsystems (the rules in force changed: DiscoveryReport::udev_subsystems).
  /// Returns at once; may be called from `on_change` and from any thread. Nothing when the
  /// set is the same. The udev monitor binds a netlink socket with the new filter before
  /// its thread closes the old one, so an event of a subsystem both name reaches one of them;
  /// a subsystem only the new one names has no event before the new socket is bound, so once
  /// it is, the thread reports a change (a re-scan: a device that came meanwhile is found). A
  /// socket that cannot be bound keeps the old filter, with a warning. The rescan fallback
  /// rescans the new subsystems at once. Before Start it only sets what Start opens with.
  void SetSubsystems(std::vector<std::string> subsystems);

  /// "udev monitor" or "rescan every N s"; valid after Start.
  std::string mode() const;
  /// Why the netlink monitor is not used ("" when it is); valid after Start.
  std::string warning() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefd
