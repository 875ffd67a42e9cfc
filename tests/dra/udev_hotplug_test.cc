// End to end under umockdev: real libudev sees a mocked /sys, /dev and uevent socket; the udev
// monitor reports, discovery runs again, and the node's pool at the API server stand-in shows
// the change (suite names contain "Umockdev": ctest gives them umockdev's preload library).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"
#include "edgefd/deviceplugin/flags.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/dra/publisher.h"
#include "edgefd/testing/udev_testbed.h"

namespace edgefd::dra {
namespace {

using testing::ClientFor;
using testing::FakeApiServer;
using testing::kNode;

const std::string kUsb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/";

class UmockdevDraHotplug : public edgefd::testing::HostTestbedTest {
 protected:
  void Start() {
    // Discovery as the program does it (one Discoverer across events), over the testbed.
    deviceplugin::DevicePluginFlags flags;
    flags.discovery.discovery.root = tb_->Root();
    flags.discovery.discovery.udev = true;
    feed_ = std::make_unique<deviceplugin::InventoryFeed>(
        registry_, deviceplugin::MakeDiscover(flags), watcher_);
    ASSERT_TRUE(feed_->Start());
    ASSERT_EQ(watcher_.mode(), "udev monitor");
    SlicePublisher::Options o;
    o.node = kNode;
    o.taints = TaintMode::kOff;
    publisher_ = std::make_unique<SlicePublisher>(registry_, *api_, ResourceApi("v1"), o, nullptr);
    publisher_->Start();
  }
  void TearDown() override {
    if (publisher_) publisher_->Stop();
    if (feed_) feed_->Stop();
    edgefd::testing::HostTestbedTest::TearDown();
  }
  // The device's attribute in the pool, "" when the device is not there.
  std::string Attribute(const std::string& device, const std::string& name) {
    for (const Json& d : server_.resources().PoolDevices(kNode)) {
      if (d.value("name", "") == device)
        return StringAt(d, ("/attributes/" + name + "/string").c_str());
    }
    return "";
  }

  FakeApiServer server_;
  std::unique_ptr<kube::ApiTransport> api_ = ClientFor(server_);
  deviceplugin::InventoryRegistry registry_;
  HotplugWatcher watcher_{WatchOptions{}};
  std::unique_ptr<deviceplugin::InventoryFeed> feed_;
  std::unique_ptr<SlicePublisher> publisher_;
};

TEST_F(UmockdevDraHotplug, ACoralPluggedReenumeratedAndPulledIsFollowedByThePool) {
  EDGEFD_REQUIRE_UMOCKDEV();
  Start();
  ASSERT_TRUE(publisher_->WaitForGeneration(1, std::chrono::seconds(10)));
  ASSERT_TRUE(tb_->Plug("coral-usb-bootloader.umockdev"));  // 1a6e:089a on port 1-3
  ASSERT_TRUE(server_.WaitFor([&] { return Attribute("edgetpu-1-3", "productID") == "089a"; }));
  EXPECT_EQ(Attribute("edgetpu-1-3", "kind"), "accelerator");
  EXPECT_EQ(Attribute("edgetpu-1-3", "stableID"), "1-3");
  // Firmware loaded: same port, new IDs; one device under the same name all along.
  tb_->Unplug(kUsb + "1-3");
  ASSERT_TRUE(tb_->Plug("coral-usb-runtime.umockdev"));
  ASSERT_TRUE(server_.WaitFor([&] { return Attribute("edgetpu-1-3", "productID") == "9302"; }));
  EXPECT_EQ(Attribute("edgetpu-1-3", "vendorID"), "18d1");
  // Pulled: it leaves the pool.
  tb_->Unplug(kUsb + "1-3");
  ASSERT_TRUE(server_.WaitFor([&] { return Attribute("edgetpu-1-3", "kind").empty(); }));
}

}  // namespace
}  // namespace edgefd::dra
