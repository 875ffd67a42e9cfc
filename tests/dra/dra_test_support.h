#pragma once

// Shared by the DRA suites and the DRA bench: hardware a test changes by hand, fed into a real
// InventoryRegistry, and a plain-HTTP API server stand-in with a client for it.
#include <gtest/gtest.h>

#include <memory>
#include <mutex>

#include "../deviceplugin/test_util.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/kube.h"
#include "fake_apiserver.h"

namespace edgefd::dra::testing {

using deviceplugin::testing::BigLittleInventory;
using deviceplugin::testing::TempDir;
using ::edgefd::testing::FakeApiServer;
using ::edgefd::testing::ManualChangeSource;

inline constexpr char kNode[] = "rock5b";

/// BigLittleInventory with what DRA publishes filled in: core models, capacities and max
/// frequencies, the sticks' USB IDs and serial numbers, device nodes that exist (/dev/null).
inline Inventory DraInventory(int sticks) {
  Inventory inv = BigLittleInventory(sticks);
  for (CpuCore& c : inv.cpu.cores) {
    c.capacity = c.id < 4 ? 485 : 1024;
    c.max_mhz = c.id < 4 ? 1416 : 1800;
  }
  for (Device& d : inv.devices) {
    if (d.rule != "movidius-ncs") continue;
    d.serial = "NCS" + d.id;
    d.driver = "usb";
    d.devnodes = {"/dev/null"};
  }
  return inv;
}

/// Hardware the test sets, a registry fed from it as the udev monitor would feed it.
class Hardware {
 public:
  explicit Hardware(Inventory inventory)
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
  ~Hardware() { feed_.Stop(); }

  /// Replaces the hardware and fires the change, as a udev event would.
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

/// A client for a plain-HTTP FakeApiServer.
inline std::unique_ptr<ApiTransport> ClientFor(FakeApiServer& server) {
  KubeConfig config;
  config.server = server.url();
  config.source = "test";
  config.timeout = std::chrono::milliseconds(5000);
  auto client = MakeKubeClient(config);
  EXPECT_TRUE(client.ok()) << client.error().message;
  return client.ok() ? std::move(*client) : nullptr;
}

}  // namespace edgefd::dra::testing
