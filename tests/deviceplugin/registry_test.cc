#include "edgefd/deviceplugin/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/testing/inventories.h"

namespace edgefd::deviceplugin {
namespace {

using testing::BigLittleInventory;
using ::testing::ElementsAre;

std::vector<std::string> Ids(const ResourceSnapshot& s) {
  std::vector<std::string> ids;
  for (const auto& d : s.devices) ids.push_back(d.id);
  return ids;
}

TEST(ResourcesFromInventory, CoreClassesAndResourceRulesOnly) {
  auto resources = ResourcesFromInventory(BigLittleInventory(2));
  ASSERT_EQ(resources.size(), 3u);  // the camera rule is not a resource
  EXPECT_EQ(resources[0].resource, "edgefd.io/big-cpu");
  EXPECT_EQ(resources[0].kind, ResourceKind::kCpu);
  EXPECT_THAT(Ids(resources[0]), ElementsAre("cpu4", "cpu5"));
  EXPECT_EQ(resources[0].devices[0].group, 1);
  EXPECT_EQ(resources[0].devices[0].cpu, 4);
  EXPECT_EQ(resources[1].resource, "edgefd.io/little-cpu");
  EXPECT_THAT(Ids(resources[1]), ElementsAre("cpu0", "cpu1", "cpu2", "cpu3"));
  EXPECT_EQ(resources[2].resource, "edgefd.io/movidius-ncs");
  EXPECT_THAT(Ids(resources[2]), ElementsAre("1-1.1", "1-1.2"));
  EXPECT_THAT(resources[2].devices[0].devnodes, ElementsAre("/dev/bus/usb/001/002"));
}

TEST(ResourcesFromInventory, RuleNameTheKubeletWouldRejectIsSkipped) {
  Inventory inv = BigLittleInventory(1);
  inv.devices[0].rule = "Bad Rule!";
  auto resources = ResourcesFromInventory(inv);
  ASSERT_EQ(resources.size(), 2u);  // only the core classes
  EXPECT_EQ(resources[1].resource, "edgefd.io/little-cpu");
}

TEST(ResourcesFromInventory, EveryCoreOfAHomogeneousNodeIsABigCore) {
  // A Raspberry Pi 4: four Cortex-A72, one class (DESIGN.md: advertised as big).
  Inventory inv = BigLittleInventory(0);
  for (CpuCore& c : inv.cpu.cores) c.model = "cortex-a72";
  inv.cpu.cores.resize(4);
  inv.cpu.classes = {{"all", "cortex-a72", {0, 1, 2, 3}, 1800, 1024}};
  auto resources = ResourcesFromInventory(inv);
  ASSERT_EQ(resources.size(), 1u);
  EXPECT_EQ(resources[0].resource, "edgefd.io/big-cpu");
  EXPECT_EQ(resources[0].kind, ResourceKind::kCpu);
  EXPECT_EQ(EnvVarName(resources[0]), "EDGEFD_BIG_CPUS");
  EXPECT_THAT(Ids(resources[0]), ElementsAre("cpu0", "cpu1", "cpu2", "cpu3"));
  EXPECT_EQ(resources[0].devices[0].model, "cortex-a72");
  EXPECT_EQ(resources[0].devices[3].cpu, 3);
}

TEST(ResourcesFromInventory, ThreeClassesGiveMidCpu) {
  Inventory inv = BigLittleInventory(0);
  inv.cpu.classes = {{"big", "x", {7}, 0, 1024},
                     {"mid", "y", {4, 5, 6}, 0, 800},
                     {"little", "z", {0, 1, 2, 3}, 0, 400}};
  auto resources = ResourcesFromInventory(inv);
  ASSERT_EQ(resources.size(), 3u);
  EXPECT_EQ(resources[2].resource, "edgefd.io/mid-cpu");  // sorted by name
  EXPECT_EQ(EnvVarName(resources[2]), "EDGEFD_MID_CPUS");
}

TEST(EnvVarName, FollowsTheContract) {
  ResourceSnapshot s;
  s.name = "little-cpu";
  s.kind = ResourceKind::kCpu;
  EXPECT_EQ(EnvVarName(s), "EDGEFD_LITTLE_CPUS");
  s.name = "big-cpu";
  EXPECT_EQ(EnvVarName(s), "EDGEFD_BIG_CPUS");
  s.name = "movidius-ncs";
  s.kind = ResourceKind::kAccelerator;
  EXPECT_EQ(EnvVarName(s), "EDGEFD_MOVIDIUS_NCS_DEVICES");
  EXPECT_EQ(DevnodesEnvVarName(s), "EDGEFD_MOVIDIUS_NCS_DEVNODES");
  s.name = "little-cpu";
  s.kind = ResourceKind::kCpu;
  EXPECT_EQ(DevnodesEnvVarName(s), "") << "cores have no device nodes";
}

TEST(NaturalLess, NumbersCompareAsNumbers) {
  EXPECT_TRUE(NaturalLess("cpu2", "cpu10"));
  EXPECT_FALSE(NaturalLess("cpu10", "cpu2"));
  EXPECT_TRUE(NaturalLess("1-1.2", "1-1.10"));
  EXPECT_FALSE(NaturalLess("cpu3", "cpu3"));
  EXPECT_TRUE(NaturalLess("cpu", "cpu0"));
}

TEST(InventoryRegistry, RemovedDeviceTurnsUnhealthyAndComesBackWithItsId) {
  InventoryRegistry registry(BigLittleInventory(2));
  std::vector<std::string> changes;
  int handle = registry.AddListener([&](const std::string& r) { changes.push_back(r); });
  auto before = registry.Snapshot("edgefd.io/movidius-ncs");
  ASSERT_TRUE(before);

  registry.Update(BigLittleInventory(1));  // stick 1-1.2 unplugged
  auto after = registry.Snapshot("edgefd.io/movidius-ncs");
  ASSERT_TRUE(after);
  EXPECT_GT(after->generation, before->generation);
  const PluginDevice* gone = after->Find("1-1.2");
  ASSERT_NE(gone, nullptr);
  EXPECT_FALSE(gone->healthy);
  EXPECT_FALSE(gone->present);
  EXPECT_THAT(changes, ElementsAre("edgefd.io/movidius-ncs"));  // cores did not change

  registry.Update(BigLittleInventory(2));  // plugged back, same port: same ID
  after = registry.Snapshot("edgefd.io/movidius-ncs");
  EXPECT_TRUE(after->Find("1-1.2")->healthy);
  EXPECT_EQ(after->devices.size(), 2u);
  registry.RemoveListener(handle);
  registry.Update(BigLittleInventory(0));
  EXPECT_EQ(changes.size(), 2u);  // no call after RemoveListener
}

TEST(InventoryRegistry, StickThatReenumeratesWithANewProductIdIsNoChange) {
  Inventory inv = BigLittleInventory(1);
  inv.devices[0].product_id = "2150";  // Movidius bootloader
  InventoryRegistry registry(inv);
  auto before = registry.Snapshot("edgefd.io/movidius-ncs");
  inv.devices[0].product_id = "2485";  // after firmware load, same USB port
  inv.devices[0].devnodes = {"/dev/bus/usb/001/009"};
  registry.Update(inv);
  auto after = registry.Snapshot("edgefd.io/movidius-ncs");
  ASSERT_EQ(after->devices.size(), 1u);
  EXPECT_EQ(after->devices[0].id, before->devices[0].id);
  EXPECT_TRUE(after->devices[0].healthy);
  // The new device node is what Allocate hands out from now on.
  EXPECT_THAT(after->devices[0].devnodes, ElementsAre("/dev/bus/usb/001/009"));
}

TEST(InventoryRegistry, NewResourceIsAnnouncedAsSetChange) {
  InventoryRegistry registry(BigLittleInventory(0));
  EXPECT_THAT(registry.ResourceNames(), ElementsAre("edgefd.io/big-cpu", "edgefd.io/little-cpu"));
  std::vector<std::string> changes;
  registry.AddListener([&](const std::string& r) { changes.push_back(r); });
  registry.Update(BigLittleInventory(1));
  EXPECT_THAT(changes, ElementsAre(""));
  EXPECT_THAT(registry.ResourceNames(),
              ElementsAre("edgefd.io/big-cpu", "edgefd.io/little-cpu", "edgefd.io/movidius-ncs"));
}

TEST(InventoryRegistry, SameInventoryChangesNothing) {
  InventoryRegistry registry(BigLittleInventory(2));
  auto g = registry.Snapshot("edgefd.io/little-cpu")->generation;
  int calls = 0;
  registry.AddListener([&](const std::string&) { ++calls; });
  registry.Update(BigLittleInventory(2));
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(registry.Snapshot("edgefd.io/little-cpu")->generation, g);
  EXPECT_FALSE(registry.Snapshot("edgefd.io/nope"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
