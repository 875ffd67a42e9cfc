// End to end under umockdev: real libudev sees a mocked /sys, /dev and uevent socket; the
// udev monitor (HotplugWatcher) reports, discovery runs again, and the stand-in kubelet's
// ListAndWatch stream shows the change.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/flags.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/rules_reload.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"
#include "edgefd/testing/manual_change_source.h"
#include "edgefd/testing/udev_testbed.h"

namespace edgefd::deviceplugin {
namespace {

using testing::FakeKubelet;
using testing::TempDir;

const std::string kUsb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/";
using testing::kNcs;

std::string Health(const FakeKubelet::Endpoint& ep, const std::string& id) {
  if (ep.lists.empty()) return "no list";
  for (const auto& d : ep.lists.back().devices()) {
    if (d.id() == id) return d.health();
  }
  return "absent";
}

class UdevHotplug : public edgefd::testing::HostTestbedTest {
 protected:
  void StartPlugin() {
    // Discovery as the program does it (one Discoverer across events), over the testbed.
    DevicePluginFlags flags;
    flags.discovery.discovery.root = tb_->Root();
    flags.discovery.discovery.udev = true;
    feed_ = std::make_unique<InventoryFeed>(registry_, MakeDiscover(flags), watcher_);
    ASSERT_TRUE(feed_->Start());
    ASSERT_EQ(watcher_.mode(), "udev monitor");
    PluginServerOptions server_options;
    server_options.kubelet_dir = dir_.path();
    server_ = std::make_unique<PluginServer>(registry_, server_options);
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    if (feed_) feed_->Stop();
    edgefd::testing::HostTestbedTest::TearDown();
  }

  TempDir dir_;
  FakeKubelet kubelet_{dir_.path()};
  InventoryRegistry registry_;
  HotplugWatcher watcher_{WatchOptions{}};
  std::unique_ptr<InventoryFeed> feed_;
  std::unique_ptr<PluginServer> server_;
};

TEST_F(UdevHotplug, PlugAndUnplugReachTheKubeletsStream) {
  EDGEFD_REQUIRE_UMOCKDEV();
  ASSERT_TRUE(kubelet_.Start());
  StartPlugin();
  // The first stick of a kind: a new resource, served and registered on the fly.
  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) {
    return Health(ep, "1-1") == "Healthy" && Health(ep, "1-2") == "Healthy";
  }));
  // The first list names the device nodes Allocate hands out.
  auto stub = kubelet_.Dial(kNcs);
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("1-2");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.container_responses(0).envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-2");
  ASSERT_GE(resp.container_responses(0).devices_size(), 1);
  EXPECT_THAT(resp.container_responses(0).devices(0).host_path(), ::testing::StartsWith("/dev/"));
  if (resp.container_responses(0).devices_size() == 1) {
    EXPECT_EQ(resp.container_responses(0).envs().at("EDGEFD_MOVIDIUS_NCS_DEVNODES"),
              resp.container_responses(0).devices(0).container_path());
  }

  tb_->Unplug(kUsb + "1-1");
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) {
    return Health(ep, "1-1") == "Unhealthy" && Health(ep, "1-2") == "Healthy";
  }));
  grpc::ClientContext ctx2;
  v1beta1::AllocateRequest gone;
  gone.add_container_requests()->add_devices_ids("1-1");
  auto status = stub->Allocate(&ctx2, gone, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(UdevHotplug, CoralThatReenumeratesKeepsItsDeviceId) {
  EDGEFD_REQUIRE_UMOCKDEV();
  ASSERT_TRUE(tb_->Plug("coral-usb-bootloader.umockdev"));  // 1a6e:089a on port 1-3
  ASSERT_TRUE(kubelet_.Start());
  StartPlugin();
  constexpr const char* kTpu = "edgefd.io/edgetpu";
  ASSERT_TRUE(
      kubelet_.WaitFor(kTpu, [](const auto& ep) { return Health(ep, "1-3") == "Healthy"; }));
  // Firmware loaded: it leaves and comes back as 18d1:9302 on the same port.
  tb_->Unplug(kUsb + "1-3");
  ASSERT_TRUE(tb_->Plug("coral-usb-runtime.umockdev"));
  ASSERT_TRUE(kubelet_.WaitFor(
      kTpu, [](const auto& ep) { return Health(ep, "1-3") == "Healthy" && ep.lists.size() >= 2; }));
  // Still one device under the same ID: the kubelet's capacity never doubled.
  const auto tpu = kubelet_.Get(kTpu);
  for (const auto& list : tpu->lists) {
    ASSERT_EQ(list.devices_size(), 1);
    EXPECT_EQ(list.devices(0).id(), "1-3");
  }
}

// A rules reload that brings a rule on a subsystem no rule named before (Vivante's `galcore`
// class): the reload finds the device, and its hotplug is followed from then on, with no
// restart, because the watcher's filter follows the rules in force. Wired as Serve wires it.
TEST_F(UdevHotplug, AReloadedRuleOnANewSubsystemFollowsItsHotplug) {
  EDGEFD_REQUIRE_UMOCKDEV();
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  testing::ProjectedVolume volume(dir_.path() / "rules");
  volume.Publish({{"rules.yaml", "rules: []\n"}});
  DevicePluginFlags flags;
  flags.discovery.discovery.root = tb_->Root();
  flags.discovery.discovery.udev = true;
  flags.discovery.discovery.rule_files = {volume.path() / "rules.yaml"};
  auto watch = MakeWatchOptions(flags);
  ASSERT_TRUE(watch) << watch.error().message;
  ASSERT_EQ(std::count(watch->subsystems.begin(), watch->subsystems.end(), "galcore"), 0);
  RulesReload reload(flags.discovery.discovery.rule_files);
  HotplugWatcher udev(*watch);
  FollowRules follow(reload, &udev);
  std::unique_ptr<ChangeSource> rules = MakeRulesWatcher(flags.discovery.discovery);
  ChangeSources changes({&udev, rules.get()});
  std::mutex mu;
  std::condition_variable cv;
  int listener = registry_.AddListener([&](const std::string&) {
    std::lock_guard lock(mu);
    cv.notify_all();
  });
  auto served = [&] {
    auto snapshot = registry_.Snapshot("edgefd.io/vivante");
    return snapshot && !snapshot->devices.empty() && snapshot->devices[0].present;
  };
  auto wait_for = [&](auto pred) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), pred);
  };
  InventoryFeed feed(registry_, MakeDiscover(flags, &reload), changes);
  ASSERT_TRUE(feed.Start());
  ASSERT_EQ(udev.mode(), "udev monitor");
  EXPECT_FALSE(served());

  volume.Publish({{"rules.yaml", "rules:\n  - name: vivante\n    match: {subsystem: galcore}\n"}});
  ASSERT_TRUE(wait_for(served));
  tb_->Unplug("/sys/devices/virtual/galcore/galcore");
  EXPECT_TRUE(wait_for([&] { return !served(); }));
  feed.Stop();
  registry_.RemoveListener(listener);
}

}  // namespace
}  // namespace edgefd::deviceplugin
