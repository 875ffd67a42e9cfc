#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/discovery/inventory.h"
#include "edgefd/discovery/watch.h"

namespace edgefd::deviceplugin {

/// Keeps an InventoryRegistry in step with the hardware: whenever the ChangeSource (udev
/// monitor, its rescan fallback, a test) reports a change it runs discovery again and hands the
/// new inventory to the registry, which pushes changed device lists to ListAndWatch streams.
class InventoryFeed {
 public:
  using DiscoverFn = std::function<Result<Inventory>()>;

  /// Everything must outlive the feed; `metrics` may be null.
  InventoryFeed(InventoryRegistry& registry, DiscoverFn discover, ChangeSource& source,
                Metrics* metrics = nullptr);
  ~InventoryFeed() { Stop(); }

  /// Discovers once (a failure here is returned: bad input the user named), then follows
  /// the source. Later discovery failures are logged and keep the last good inventory.
  Status Start();
  void Stop();
  /// Discovers again now; false (and a log line) when discovery failed.
  bool Refresh();

 private:
  InventoryRegistry& registry_;
  DiscoverFn discover_;
  ChangeSource& source_;
  Metrics* metrics_;
  std::mutex mu_;  // one discovery at a time
  bool started_ = false;
};

/// A ChangeSource that never reports: for a static inventory (--inventory).
class NoChangeSource final : public ChangeSource {
 public:
  Status Start(std::function<void()>) override { return Ok{}; }
  void Stop() override {}
};

/// Reads a static inventory from a YAML (or JSON) file, for boards discovery cannot see
/// through and for tests:
///   cpu: {classes: [{name: big, cpus: [4, 5], model: cortex-a76, max_mhz: 2400,
///                    capacity: 1024}, {name: little, cpus: [0, 1, 2, 3]}],
///         cores: [{id: 4, cluster: 1, numa_node: 0}, ...]}
///   devices: [{rule: movidius-ncs, id: "1-1.2", devnodes: [/dev/bus/usb/001/004],
///              numa_node: 0, healthy: true, vendor_id: "03e7", product_id: "2485",
///              serial: "...", driver: "..."}]
/// Devices listed here are resources. Errors name the file and what is wrong.
Result<Inventory> LoadInventoryFile(const std::filesystem::path& path);

}  // namespace edgefd::deviceplugin
