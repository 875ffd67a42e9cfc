// The node's pool of ResourceSlices against the API server stand-in, over real HTTP.
#include "edgefd/dra/publisher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

using testing::ClientFor;
using testing::DraInventory;
using ::testing::ElementsAre;
using testing::FakeApiServer;
using testing::FedRegistry;
using testing::kNode;

std::vector<std::string> Names(const std::vector<Json>& devices) {
  std::vector<std::string> out;
  for (const Json& d : devices) out.push_back(d.value("name", ""));
  return out;
}

bool HasDevice(FakeApiServer& server, const std::string& name) {
  for (const Json& d : server.resources().PoolDevices(kNode)) {
    if (d.value("name", "") == name) return true;
  }
  return false;
}

class PublisherTest : public ::testing::Test {
 protected:
  SlicePublisher::Options Options(TaintMode taints = TaintMode::kOff) {
    SlicePublisher::Options o;
    o.node = kNode;
    o.node_uid = "node-uid";
    o.taints = taints;
    o.min_backoff = std::chrono::milliseconds(5);
    o.max_backoff = std::chrono::milliseconds(50);
    return o;
  }
  std::unique_ptr<SlicePublisher> Publisher(SlicePublisher::Options options,
                                            ResourceApi version = ResourceApi("v1")) {
    return std::make_unique<SlicePublisher>(hw_.registry(), *api_, version, options, [this] {
      std::lock_guard lock(mu_);
      return held_;
    });
  }
  void Hold(std::set<std::string> held) {
    std::lock_guard lock(mu_);
    held_ = std::move(held);
  }

  FakeApiServer server_;
  std::unique_ptr<kube::ApiTransport> api_ = ClientFor(server_);
  FedRegistry hw_{DraInventory(2)};
  std::mutex mu_;
  std::set<std::string> held_;
};

TEST_F(PublisherTest, PublishesOnePoolForTheNodeWithEveryDevice) {
  auto publisher = Publisher(Options());
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  auto slices = server_.resources().Slices();
  ASSERT_EQ(slices.size(), 1u);
  const Json& s = slices[0];
  EXPECT_EQ(s["metadata"]["name"], "rock5b-edgefd.io-0");
  EXPECT_EQ(s["metadata"]["ownerReferences"][0]["name"], kNode);
  EXPECT_EQ(s["spec"]["driver"], "edgefd.io");
  EXPECT_EQ(s["spec"]["nodeName"], kNode);
  EXPECT_EQ(s["spec"]["pool"]["name"], kNode);
  EXPECT_EQ(s["spec"]["pool"]["resourceSliceCount"], 1);
  EXPECT_THAT(Names(server_.resources().PoolDevices(kNode)),
              ElementsAre("cpu0", "cpu1", "cpu2", "cpu3", "cpu4", "cpu5", "movidius-ncs-1-1-1",
                          "movidius-ncs-1-1-2"));
  EXPECT_TRUE(publisher->Stats().published);
  // Nothing changed: a second sync lists but writes nothing.
  size_t writes = server_.resources().SliceWrites();
  ASSERT_TRUE(publisher->SyncOnce());
  EXPECT_EQ(server_.resources().SliceWrites(), writes);
}

TEST_F(PublisherTest, HotplugChangesThePoolAndBumpsItsGeneration) {
  auto publisher = Publisher(Options());
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  hw_.Set(DraInventory(3));
  ASSERT_TRUE(server_.WaitFor([&] { return HasDevice(server_, "movidius-ncs-1-1-3"); }));
  EXPECT_EQ(server_.resources().Slices()[0]["spec"]["pool"]["generation"], 2);
  hw_.Set(DraInventory(1));  // two sticks pulled
  ASSERT_TRUE(server_.WaitFor([&] { return !HasDevice(server_, "movidius-ncs-1-1-2"); }));
  EXPECT_FALSE(HasDevice(server_, "movidius-ncs-1-1-3"));
  EXPECT_TRUE(HasDevice(server_, "movidius-ncs-1-1-1"));
  EXPECT_EQ(server_.resources().Slices()[0]["spec"]["pool"]["generation"], 3);
}

TEST_F(PublisherTest, RemovesStaleSlicesOfThisNodeOnlyAtStart) {
  auto stale = [](const std::string& name, const std::string& node, int generation) {
    return Json{{"metadata", {{"name", name}}},
                {"spec",
                 {{"driver", "edgefd.io"},
                  {"nodeName", node},
                  {"pool", {{"name", node}, {"generation", generation}, {"resourceSliceCount", 3}}},
                  {"devices", Json::array({{{"name", "old-device"}}})}}}};
  };
  server_.resources().PutSlice(stale("rock5b-edgefd.io-0", kNode, 4));
  server_.resources().PutSlice(stale("rock5b-edgefd.io-2", kNode, 4));
  server_.resources().PutSlice(stale("other-edgefd.io-0", "other", 9));
  Json foreign = stale("rock5b-gpu.example.com-0", kNode, 1);
  foreign["spec"]["driver"] = "gpu.example.com";
  server_.resources().PutSlice(foreign);
  auto publisher = Publisher(Options());
  ASSERT_TRUE(publisher->SyncOnce());
  std::vector<std::string> names;
  for (const Json& s : server_.resources().Slices()) names.push_back(s["metadata"]["name"]);
  EXPECT_THAT(names,
              ElementsAre("other-edgefd.io-0", "rock5b-edgefd.io-0", "rock5b-gpu.example.com-0"));
  // The generation goes past the stale one, so no consumer mistakes old for new.
  EXPECT_EQ(publisher->Stats().generation, 5);
  EXPECT_THAT(Names(server_.resources().PoolDevices(kNode)),
              ::testing::Not(::testing::Contains("old-device")));
}

TEST_F(PublisherTest, RepairsASliceSomeoneElseDeletedOrChanged) {
  SlicePublisher::Options options = Options();
  options.resync = std::chrono::milliseconds(50);
  auto publisher = Publisher(options);
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  // The kubelet wipes a node's slices when it starts.
  server_.resources().DeleteSlice("rock5b-edgefd.io-0");
  ASSERT_TRUE(publisher->WaitForGeneration(2, std::chrono::seconds(10)));
  EXPECT_EQ(server_.resources().Slices().size(), 1u);
  EXPECT_EQ(server_.resources().PoolDevices(kNode).size(), 8u);
}

TEST_F(PublisherTest, ACheckSoonAfterAKubeletRestartRepairsTheWipedPool) {
  SlicePublisher::Options options = Options();
  options.resync = std::chrono::hours(1);
  auto publisher = Publisher(options);
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  // The kubelet registered us again, then wiped the node's slices: only the check notices.
  publisher->CheckIn(std::chrono::milliseconds(100));
  server_.resources().DeleteSlice("rock5b-edgefd.io-0");
  ASSERT_TRUE(publisher->WaitForGeneration(2, std::chrono::seconds(10)));
  EXPECT_EQ(server_.resources().PoolDevices(kNode).size(), 8u);
}

TEST_F(PublisherTest, ManyDevicesSplitIntoSeveralSlicesOfOnePool) {
  Inventory inv = DraInventory(0);
  for (int i = 0; i < 70; ++i) {
    Device d;
    d.rule = "hailo";
    d.id = "0000:" + std::to_string(10 + i) + ":00.0";
    d.resource = true;
    inv.devices.push_back(d);
  }
  hw_.Set(inv);
  auto publisher = Publisher(Options());
  ASSERT_TRUE(publisher->SyncOnce());
  auto slices = server_.resources().Slices();
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0]["spec"]["pool"]["resourceSliceCount"], 2);
  EXPECT_EQ(slices[1]["spec"]["pool"]["generation"], slices[0]["spec"]["pool"]["generation"]);
  EXPECT_EQ(server_.resources().PoolDevices(kNode).size(), 76u);
  // Back to few devices: the second slice goes.
  hw_.Set(DraInventory(1));
  ASSERT_TRUE(publisher->SyncOnce());
  EXPECT_EQ(server_.resources().Slices().size(), 1u);
}

TEST_F(PublisherTest, HeldVanishedDeviceStaysTaintedWhenTheClusterKeepsTaints) {
  server_.resources().SetTaintsEnabled(true);
  auto publisher = Publisher(Options(TaintMode::kAuto));
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  EXPECT_TRUE(publisher->Stats().taints);
  Hold({"movidius-ncs-1-1-2"});
  hw_.Set(DraInventory(1));
  Json taint;
  ASSERT_TRUE(server_.WaitFor([&] {
    for (const Json& d : server_.resources().PoolDevices(kNode)) {
      if (d["name"] == "movidius-ncs-1-1-2" && d.contains("taints")) taint = d["taints"][0];
    }
    return !taint.is_null();
  }));
  EXPECT_EQ(taint["key"], "edgefd.io/unplugged");
  EXPECT_EQ(taint["effect"], "NoExecute");
  EXPECT_FALSE(taint.value("timeAdded", "").empty());
  // The pod is gone, the claim unprepared: the device leaves the pool.
  Hold({});
  publisher->Trigger();
  ASSERT_TRUE(server_.WaitFor([&] { return !HasDevice(server_, "movidius-ncs-1-1-2"); }));
}

TEST_F(PublisherTest, WithoutTaintSupportAVanishedDeviceLeavesEvenWhenHeld) {
  server_.resources().SetTaintsEnabled(false);  // DRADeviceTaints off: the probe sees it
  auto publisher = Publisher(Options(TaintMode::kAuto));
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  EXPECT_FALSE(publisher->Stats().taints);
  // The probe was a dry run: nothing of it was stored.
  EXPECT_EQ(server_.resources().Slices().size(), 1u);
  Hold({"movidius-ncs-1-1-2"});
  hw_.Set(DraInventory(1));
  ASSERT_TRUE(server_.WaitFor([&] { return !HasDevice(server_, "movidius-ncs-1-1-2"); }));
}

TEST_F(PublisherTest, RetriesAfterServerErrorsAndConflicts) {
  auto publisher = Publisher(Options());
  server_.InjectFault({FakeApiServer::FaultKind::kStatus, 503, {}, "GET"});
  server_.InjectFault({FakeApiServer::FaultKind::kStatus, 500, {}, "POST"});
  publisher->Start();
  ASSERT_TRUE(publisher->WaitForGeneration(1, std::chrono::seconds(10)));
  EXPECT_GE(publisher->Stats().failures, 2u);
  // A concurrent writer changed our slice between our list and our update: 409, then a
  // fresh list and a successful update.
  uint64_t failures = publisher->Stats().failures;
  server_.InjectFault({FakeApiServer::FaultKind::kStatus, 409, {}, "PUT"});
  hw_.Set(DraInventory(3));
  ASSERT_TRUE(server_.WaitFor([&] { return HasDevice(server_, "movidius-ncs-1-1-3"); }));
  EXPECT_EQ(publisher->Stats().failures, failures + 1);
  EXPECT_EQ(server_.Count("PUT", 409), 1u);
}

TEST_F(PublisherTest, TalksV1beta1ToAnOlderCluster) {
  server_.resources().SetVersions({"v1beta1"});
  auto version = DiscoverResourceApi(*api_);
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(version->version(), "v1beta1");
  auto publisher = Publisher(Options(), *version);
  ASSERT_TRUE(publisher->SyncOnce());
  auto devices = server_.resources().PoolDevices(kNode);
  ASSERT_EQ(devices.size(), 8u);
  EXPECT_EQ(devices[4]["basic"]["attributes"]["coreClass"]["string"], "big");
}

TEST_F(PublisherTest, DiscoveryNamesWhatTheServerLacks) {
  server_.resources().SetVersions({"v1alpha3"});
  auto version = DiscoverResourceApi(*api_);
  ASSERT_FALSE(version);
  EXPECT_THAT(version.error().message, ::testing::HasSubstr("v1alpha3"));
  EXPECT_THAT(version.error().message, ::testing::HasSubstr("v1beta1"));
}

}  // namespace
}  // namespace edgefd::dra
