#pragma once

// The device plugin's registry fed from hardware a test or bench sets by hand (header-only;
// its users link edgefd_deviceplugin).

#include <gtest/gtest.h>

#include <mutex>

#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/discovery/inventory.h"
#include "edgefd/testing/manual_change_source.h"

namespace edgefd::testing {

/// An InventoryRegistry fed through a real InventoryFeed from an inventory the caller sets,
/// as the udev monitor and discovery feed it on a node.
class FedRegistry {
 public:
  explicit FedRegistry(Inventory inventory)
      : inventory_(std::move(inventory)),
        feed_(
            registry_,
            [this]() -> Result<Inventory> {
              std::lock_guard lock(mu_);
              return inventory_;
            },
            changes_) {
    EXPECT_TRUE(feed_.Start());
  }
  ~FedRegistry() { feed_.Stop(); }
  FedRegistry(const FedRegistry&) = delete;
  FedRegistry& operator=(const FedRegistry&) = delete;

  /// Replaces the hardware and reports the change, as a udev event would.
  void Set(Inventory inventory) {
    {
      std::lock_guard lock(mu_);
      inventory_ = std::move(inventory);
    }
    changes_.Fire();
  }
  deviceplugin::InventoryRegistry& registry() { return registry_; }

 private:
  std::mutex mu_;
  Inventory inventory_;
  deviceplugin::InventoryRegistry registry_;
  ManualChangeSource changes_;
  deviceplugin::InventoryFeed feed_;
};

}  // namespace edgefd::testing
