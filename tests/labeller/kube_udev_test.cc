// The whole chain under umockdev: a USB stick plugged into the (mocked) host → udev event →
// the labeller's HotplugWatcher → real discovery → merge patch at the test API server.
// Suite names contain "Umockdev", so ctest runs them with umockdev's preload library.
#include <gtest/gtest.h>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/udev_testbed.h"
#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

const std::string kUsb = "/sys/devices/pci0000:00/0000:00:14.0/usb1/";

class UmockdevKubeAgent : public HostTestbedTest {
 protected:
  void SetUp() override {
    HostTestbedTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto pki = TestPki::Create(MakeTempDir("edgefd-pki"));
    ASSERT_TRUE(pki.ok()) << pki.error().message;
    pki_ = *pki;
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServer::Options{pki_.server_cert, pki_.server_key, {}});
    server_->AddNode("n1", {{"kubernetes.io/hostname", "n1"}});
  }

  std::unique_ptr<kube::ApiTransport> Client() {
    kube::KubeConfig c;
    c.server = server_->url();
    c.ca_pem = ReadFile(pki_.ca_cert);
    auto client = kube::MakeKubeClient(c);
    EXPECT_TRUE(client.ok()) << client.error().message;
    return client.ok() ? std::move(*client) : nullptr;
  }

  std::string Label(const std::string& name) {
    Labels labels = server_->NodeLabels("n1");
    auto it = labels.find(name);
    return it == labels.end() ? "<absent>" : it->second;
  }

  TestPki pki_;
  std::unique_ptr<FakeApiServer> server_;
};

TEST_F(UmockdevKubeAgent, PluggingAndUnpluggingSticksRelabelsTheNode) {
  auto api = Client();
  ASSERT_NE(api, nullptr);
  AgentMetrics metrics;
  NodeLabeller labeller(*api, "n1", &metrics);
  ObservedSink observed(labeller);
  DiscoveryOptions options;
  options.root = tb_->Root();
  options.udev = true;
  Agent::DiscoverFn discover = [&]() -> Result<Labels> {
    auto report = Discover(options);
    if (!report) return report.error();
    return RenderLabels(report->inventory);
  };
  HotplugWatcher watcher(WatchOptions{});
  Agent agent(discover, observed, metrics, FastAgentOptions());  // resync: 1 h
  RunningAgent running(agent, &watcher);
  ASSERT_TRUE(observed.WaitFor(1, 0));  // converged on the host without sticks
  EXPECT_EQ(Label("edgefd.io/accel.movidius-ncs"), "<absent>");

  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  ASSERT_TRUE(server_->WaitFor([&] { return Label("edgefd.io/accel.movidius-ncs.count") == "2"; }))
      << Label("edgefd.io/accel.movidius-ncs.count");
  EXPECT_EQ(Label("edgefd.io/accel.movidius-ncs"), "true");

  tb_->Unplug(kUsb + "1-1");
  ASSERT_TRUE(server_->WaitFor([&] { return Label("edgefd.io/accel.movidius-ncs.count") == "1"; }));

  tb_->Unplug(kUsb + "1-2");
  ASSERT_TRUE(
      server_->WaitFor([&] { return Label("edgefd.io/accel.movidius-ncs") == "<absent>"; }));
  EXPECT_EQ(Label("edgefd.io/accel.movidius-ncs.count"), "<absent>");
  EXPECT_EQ(Label("kubernetes.io/hostname"), "n1");
  EXPECT_GE(metrics.events, 3u);
}

}  // namespace
}  // namespace edgefd::testing
