// What a node's ResourceSlices say about its devices: names, attributes, taints, splitting.
#include "edgefd/dra/slices.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/dra/calibration.h"

namespace edgefd::dra {
namespace {

using deviceplugin::PluginDevice;
using deviceplugin::ResourcesFromInventory;
using deviceplugin::ResourceSnapshot;
using testing::DraInventory;
using ::testing::ElementsAre;

const SliceDevice* Find(const std::vector<SliceDevice>& devices, const std::string& name) {
  for (const SliceDevice& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::vector<std::string> Names(const std::vector<SliceDevice>& devices) {
  std::vector<std::string> out;
  for (const SliceDevice& d : devices) out.push_back(d.name);
  return out;
}

TEST(DeviceNames, AreDnsLabelsDerivedFromTheStableId) {
  ResourceSnapshot ncs;
  ncs.name = "movidius-ncs";
  ResourceSnapshot cores;
  cores.name = "big-cpu";
  cores.kind = deviceplugin::ResourceKind::kCpu;
  auto name = [](const ResourceSnapshot& r, const std::string& id) {
    PluginDevice d;
    d.id = id;
    return deviceplugin::DeviceName(r, d);
  };
  EXPECT_EQ(name(ncs, "1-1.2"), "movidius-ncs-1-1-2");
  EXPECT_EQ(name(ncs, "0000:01:00.0"), "movidius-ncs-0000-01-00-0");
  EXPECT_EQ(name(ncs, "/soc/NPU@FDAB0000"), "movidius-ncs-soc-npu-fdab0000");
  EXPECT_EQ(name(cores, "cpu4"), "cpu4");
  // Long devicetree paths are cut and hashed, distinct and stable.
  std::string deep = "/bus@ff000000/soc@0/" + std::string(80, 'x') + "/npu@1";
  std::string a = name(ncs, deep);
  std::string b = name(ncs, deep + "0");
  EXPECT_LE(a.size(), 63u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, name(ncs, deep));
  EXPECT_THAT(a, ::testing::MatchesRegex("[a-z0-9]([-a-z0-9]*[a-z0-9])?"));
}

TEST(DeviceAttributes, CoresCarryClassCapacityAndTopologyTyped) {
  auto resources = ResourcesFromInventory(DraInventory(1));
  auto devices = PoolDevices(resources, {}, false);
  const SliceDevice* big = Find(devices, "cpu5");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(std::get<std::string>(big->attributes.at("kind")), "cpu");
  EXPECT_EQ(std::get<std::string>(big->attributes.at("coreClass")), "big");
  EXPECT_EQ(std::get<std::string>(big->attributes.at("model")), "cortex-a72");
  EXPECT_EQ(std::get<int64_t>(big->attributes.at("capacity")), 1024);
  EXPECT_EQ(std::get<int64_t>(big->attributes.at("maxMHz")), 1800);
  EXPECT_EQ(std::get<int64_t>(big->attributes.at("cluster")), 1);
  EXPECT_EQ(std::get<int64_t>(big->attributes.at("cpu")), 5);
  EXPECT_EQ(std::get<int64_t>(big->attributes.at("numaNode")), 0);
  EXPECT_EQ(std::get<std::string>(big->attributes.at("stableID")), "cpu5");
  const SliceDevice* little = Find(devices, "cpu0");
  ASSERT_NE(little, nullptr);
  EXPECT_EQ(std::get<std::string>(little->attributes.at("coreClass")), "little");
  EXPECT_EQ(std::get<int64_t>(little->attributes.at("capacity")), 485);
}

TEST(DeviceAttributes, ACalibrationPutsTheSpeedOfOneCoreOnEachCoreOfItsClasses) {
  auto devices = PoolDevices(ResourcesFromInventory(DraInventory(2)), {}, false);
  CalibrationSummary calibration;
  calibration.model = "yolo-tiny";
  calibration.classes["big"] = {38.96, 2};  // the whole class: two cores
  AddCalibrationAttributes(calibration, devices);
  for (const char* core : {"cpu4", "cpu5"}) {
    const SliceDevice* big = Find(devices, core);
    ASSERT_NE(big, nullptr);
    // An int, so CEL compares it as a number: MFLOP/s of one core.
    EXPECT_EQ(std::get<int64_t>(big->attributes.at("mflops")), 19480) << core;
    EXPECT_EQ(std::get<std::string>(big->attributes.at("calibrationModel")), "yolo-tiny");
  }
  // A class the calibration did not measure, and what is no core, get nothing.
  EXPECT_FALSE(Find(devices, "cpu0")->attributes.contains("mflops"));
  EXPECT_FALSE(Find(devices, "movidius-ncs-1-1-2")->attributes.contains("mflops"));
  EXPECT_FALSE(Find(devices, "movidius-ncs-1-1-2")->attributes.contains("calibrationModel"));
  Json slice = SliceJson(ResourceApi("v1"), SliceTarget{"n", "", 1, 1}, 0, devices);
  EXPECT_EQ(slice["spec"]["devices"][4]["attributes"]["mflops"], Json({{"int", 19480}}));
}

TEST(CalibrationFile, ABrokenFileGivesNoSpeedAndTheNextGoodOneDoes) {
  testing::TempDir dir;
  CalibrationFile file(dir.path() / "cal.json");
  EXPECT_FALSE(file.Read().has_value());  // missing
  EXPECT_THAT(file.LastError(), ::testing::HasSubstr((dir.path() / "cal.json").string()));
  dir.Write("cal.json", "{garbage");
  EXPECT_FALSE(file.Read().has_value());
  EXPECT_THAT(file.LastError(), ::testing::HasSubstr((dir.path() / "cal.json").string()));
  dir.Write("cal.json", R"({"kind": "edgefd-pipeline calibration", "model": "conv",
      "classes": [{"class": "little", "threads": [{"threads": 4, "gflops": 10}]}]})");
  auto good = file.Read();
  ASSERT_TRUE(good.has_value()) << file.LastError();
  EXPECT_EQ(good->classes.at("little").threads, 4);
  EXPECT_EQ(file.LastError(), "");
}

TEST(DeviceAttributes, AcceleratorsCarryRuleIdsAndDriverButNoCameraThatIsNoResource) {
  auto devices = PoolDevices(ResourcesFromInventory(DraInventory(2)), {}, false);
  EXPECT_THAT(Names(devices), ElementsAre("cpu0", "cpu1", "cpu2", "cpu3", "cpu4", "cpu5",
                                          "movidius-ncs-1-1-1", "movidius-ncs-1-1-2"));
  const SliceDevice* ncs = Find(devices, "movidius-ncs-1-1-2");
  ASSERT_NE(ncs, nullptr);
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("kind")), "accelerator");
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("model")), "movidius-ncs");
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("vendorID")), "03e7");
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("productID")), "2485");
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("stableID")), "1-1.2");
  EXPECT_EQ(std::get<std::string>(ncs->attributes.at("driver")), "usb");
  EXPECT_FALSE(ncs->attributes.contains("coreClass"));
  EXPECT_TRUE(ncs->taints.empty());
}

TEST(DeviceAttributes, VersionsAreTypedSemverAndWhatIsNoVersionIsLeftOut) {
  Inventory inv = DraInventory(0);
  Device d;
  d.rule = "v3d-gpu";
  d.id = "/axi/gpu@1002000000";
  d.resource = true;
  d.driver_version = "v2.1";                       // normalised
  d.firmware_version = "A1B2C3D4E5F6A7B8C9D0E1F";  // a srcversion: no version
  d.runtime_version = "32.7.1";
  inv.devices.push_back(d);
  auto devices = PoolDevices(ResourcesFromInventory(inv), {}, false);
  const SliceDevice* gpu = Find(devices, "v3d-gpu-axi-gpu-1002000000");
  ASSERT_NE(gpu, nullptr) << ::testing::PrintToString(Names(devices));
  EXPECT_EQ(std::get<SemVer>(gpu->attributes.at("driverVersion")).text, "2.1.0");
  EXPECT_EQ(std::get<SemVer>(gpu->attributes.at("runtimeVersion")).text, "32.7.1");
  EXPECT_FALSE(gpu->attributes.contains("firmwareVersion"));
  Json slice = SliceJson(ResourceApi("v1"), {"rpi5", "", 1, 1}, 0, {*gpu});
  EXPECT_EQ(slice["spec"]["devices"][0]["attributes"]["driverVersion"],
            Json({{"version", "2.1.0"}}));
}

TEST(DeviceAttributes, LongStringsFitTheApiLimit) {
  Inventory inv = DraInventory(0);
  Device d;
  d.rule = "rknpu";
  d.id = "/" + std::string(100, 'a') + "/npu@fdab0000";
  d.resource = true;
  inv.devices.push_back(d);
  auto devices = PoolDevices(ResourcesFromInventory(inv), {}, false);
  ASSERT_EQ(devices.size(), 7u);
  const std::string id = std::get<std::string>(devices.back().attributes.at("stableID"));
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(id.substr(0, 10), d.id.substr(0, 10));
}

TEST(PoolDevices, VanishedDevicesLeaveUnlessHeldAndTaintable) {
  // A registry that saw two sticks and then lost 1-1.2: it keeps it, marked gone.
  deviceplugin::InventoryRegistry registry(DraInventory(2));
  registry.Update(DraInventory(1));
  auto resources = deviceplugin::AllSnapshots(registry);
  const std::string gone = "movidius-ncs-1-1-2";
  EXPECT_EQ(Find(PoolDevices(resources, {}, true), gone), nullptr);
  EXPECT_EQ(Find(PoolDevices(resources, {gone}, false), gone), nullptr);
  auto tainted = PoolDevices(resources, {gone}, true);
  const SliceDevice* held = Find(tainted, gone);
  ASSERT_NE(held, nullptr);
  ASSERT_EQ(held->taints.size(), 1u);
  EXPECT_EQ(held->taints[0].key, "edgefd.io/unplugged");
  EXPECT_EQ(held->taints[0].effect, "NoExecute");
  EXPECT_TRUE(Find(tainted, "movidius-ncs-1-1-1")->taints.empty());
}

TEST(PoolDevices, UnhealthyDevicesAreTaintedNoScheduleOrLeftOut) {
  Inventory inv = DraInventory(1);
  inv.devices[0].healthy = false;  // its driver is not loaded
  auto resources = ResourcesFromInventory(inv);
  EXPECT_EQ(Find(PoolDevices(resources, {}, false), "movidius-ncs-1-1-1"), nullptr);
  const SliceDevice* d = Find(PoolDevices(resources, {}, true), "movidius-ncs-1-1-1");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->taints.at(0).effect, "NoSchedule");
}

TEST(PoolDevices, WhatTheDevicePluginHandedOutIsTaintedNoScheduleOrLeftOut) {
  auto resources = ResourcesFromInventory(DraInventory(1));
  const std::set<std::string> taken = {"cpu4", "movidius-ncs-1-1-1"};
  EXPECT_EQ(Find(PoolDevices(resources, {}, false, taken), "cpu4"), nullptr);
  EXPECT_NE(Find(PoolDevices(resources, {}, false, taken), "cpu5"), nullptr);
  auto tainted = PoolDevices(resources, {}, true, taken);
  for (const char* name : {"cpu4", "movidius-ncs-1-1-1"}) {
    const SliceDevice* d = Find(tainted, name);
    ASSERT_NE(d, nullptr) << name;
    ASSERT_EQ(d->taints.size(), 1u) << name;
    EXPECT_EQ(d->taints[0].key, "edgefd.io/device-plugin");
    EXPECT_EQ(d->taints[0].effect, "NoSchedule");
  }
  EXPECT_TRUE(Find(tainted, "cpu5")->taints.empty());
}

TEST(Slices, NamesFitAndStayDistinctForLongNodeNames) {
  EXPECT_EQ(SliceName("rock5b", 0), "rock5b-edgefd.io-0");
  std::string node = std::string(240, 'n') + ".example.com";
  EXPECT_LE(SliceName(node, 12).size(), 253u);
  EXPECT_NE(SliceName(node, 0), SliceName(node + "x", 0));
  EXPECT_TRUE(SliceName(node, 3).ends_with("-edgefd.io-3"));
}

TEST(Slices, ASplitPoolHasAtMostSixtyFourDevicesPerSliceAndOneSliceWhenEmpty) {
  std::vector<SliceDevice> many(130);
  auto parts = SplitPool(many);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].size(), 64u);
  EXPECT_EQ(parts[2].size(), 2u);
  ASSERT_EQ(SplitPool({}).size(), 1u);
  EXPECT_TRUE(SplitPool({})[0].empty());
}

TEST(Slices, V1IsFlatV1beta1NestsUnderBasic) {
  SliceDevice d{"cpu4",
                {{"kind", std::string("cpu")}, {"capacity", int64_t{1024}}},
                {{"edgefd.io/unplugged", "", "NoExecute", "2026-01-01T00:00:00Z"}}};
  SliceTarget target{"rock5b", "uid-1", 7, 2};
  Json v1 = SliceJson(ResourceApi("v1"), target, 1, {d});
  EXPECT_EQ(v1["apiVersion"], "resource.k8s.io/v1");
  EXPECT_EQ(v1["metadata"]["name"], "rock5b-edgefd.io-1");
  EXPECT_EQ(v1["metadata"]["ownerReferences"][0]["kind"], "Node");
  EXPECT_EQ(v1["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(v1["spec"]["driver"], "edgefd.io");
  EXPECT_EQ(v1["spec"]["nodeName"], "rock5b");
  EXPECT_EQ(v1["spec"]["pool"],
            Json({{"name", "rock5b"}, {"generation", 7}, {"resourceSliceCount", 2}}));
  EXPECT_EQ(v1["spec"]["devices"][0]["attributes"]["capacity"], Json({{"int", 1024}}));
  EXPECT_EQ(v1["spec"]["devices"][0]["attributes"]["kind"], Json({{"string", "cpu"}}));
  EXPECT_EQ(v1["spec"]["devices"][0]["taints"][0]["effect"], "NoExecute");
  EXPECT_EQ(v1["spec"]["devices"][0]["taints"][0]["timeAdded"], "2026-01-01T00:00:00Z");
  Json beta = SliceJson(ResourceApi("v1beta1"), target, 0, {d});
  EXPECT_EQ(beta["apiVersion"], "resource.k8s.io/v1beta1");
  EXPECT_EQ(beta["spec"]["devices"][0]["name"], "cpu4");
  EXPECT_EQ(beta["spec"]["devices"][0]["basic"]["attributes"]["capacity"], Json({{"int", 1024}}));
  EXPECT_FALSE(beta["spec"]["devices"][0].contains("attributes"));
  // Without a known node UID there is no owner reference.
  EXPECT_FALSE(SliceJson(ResourceApi("v1"), {"rock5b", "", 1, 1}, 0, {})["metadata"].contains(
      "ownerReferences"));
}

}  // namespace
}  // namespace edgefd::dra
