#include "edgefd/discovery/devicetree.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using testing::TestdataBin;
using testing::TestdataDir;

fs::path LiveTree(const std::string& fixture) {
  return TestdataDir() / "roots" / fixture / "sys/firmware/devicetree/base";
}

Labels DtLabelsOnly(const Labels& all) {
  Labels out;
  for (const auto& [k, v] : all) {
    if (k.rfind(kDtLabelPrefix, 0) == 0) out[k] = v;
  }
  return out;
}

Labels LabelsFor(DiscoveryOptions options) {
  auto report = Discover(options);
  EXPECT_TRUE(report.ok()) << (report.ok() ? "" : report.error().message);
  return report.ok() ? RenderLabels(report->inventory) : Labels{};
}

TEST(DeviceTree, BlobAndDirectoryFormsReadTheSameTree) {
  for (std::string fixture : {"jetson-nano-blog", "nested-names"}) {
    auto blob = ReadDeviceTreeBlobFile(TestdataBin() / (fixture + ".dtb"));
    ASSERT_TRUE(blob.ok()) << blob.error().message;
    std::vector<std::string> warnings;
    auto dir = ReadDeviceTreeDir(LiveTree(fixture), &warnings);
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    EXPECT_THAT(warnings, IsEmpty());
    EXPECT_EQ(*blob, *dir) << fixture;
  }
}

TEST(DeviceTree, BlobAndDirectoryFormsGiveTheSameInventory) {
  for (std::string fixture : {"jetson-nano-blog", "nested-names"}) {
    DiscoveryOptions from_blob;
    from_blob.root = TestdataDir() / "roots/does-not-exist";
    from_blob.dtb = TestdataBin() / (fixture + ".dtb");
    DiscoveryOptions from_dir;
    from_dir.root = TestdataDir() / "roots" / fixture;
    auto a = Discover(from_blob);
    auto b = Discover(from_dir);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->inventory, b->inventory) << fixture;
    EXPECT_EQ(RenderLabels(a->inventory), RenderLabels(b->inventory)) << fixture;
  }
}

TEST(DeviceTree, JetsonNanoOfTheBlogPostGetsExactlyTheOriginalLabels) {
  DiscoveryOptions options;
  options.root = TestdataDir() / "roots/jetson-nano-blog";
  Labels dt = DtLabelsOnly(LabelsFor(options));
  EXPECT_THAT(dt, ElementsAre(Pair("beta.devicetree.org/arm-cortex-a57", "4"),
                              Pair("beta.devicetree.org/nvidia-gm20b", "1"),
                              Pair("beta.devicetree.org/nvidia-jetson-nano", "1"),
                              Pair("beta.devicetree.org/nvidia-tegra210", "1"),
                              Pair("beta.devicetree.org/nvidia-tegra210-gm20b", "1")));
}

TEST(DeviceTree, DisabledNodesAndTheirSubtreesGiveNoLabels) {
  DiscoveryOptions options;
  options.dtb = TestdataBin() / "jetson-nano-blog.dtb";
  Labels all = LabelsFor(options);
  for (const auto& [name, value] : all) {
    EXPECT_EQ(name.find("disabled-npu"), std::string::npos) << name;
    EXPECT_EQ(name.find("hidden-by-disabled-parent"), std::string::npos) << name;
    EXPECT_EQ(name.find("host1x"), std::string::npos) << name;
  }
}

TEST(DeviceTree, BoardLabelsComeFromTheRootNode) {
  DiscoveryOptions options;
  options.dtb = TestdataBin() / "jetson-nano-blog.dtb";
  Labels all = LabelsFor(options);
  EXPECT_EQ(all["edgefd.io/board"], "nvidia-jetson-nano");
  EXPECT_EQ(all["edgefd.io/soc"], "nvidia-tegra210");
  EXPECT_EQ(all["edgefd.io/board.model"], "NVIDIA-Jetson-Nano-Developer-Kit");
}

TEST(DeviceTree, NameMatchingStatusAndCompatibleRules) {
  DiscoveryOptions options;
  options.dtb = TestdataBin() / "nested-names.dtb";
  Labels dt = DtLabelsOnly(LabelsFor(options));
  // cpu0 and cpu1 (status "ok") count, cpu2 ("fail") and cpu-map do not; the npu's text after
  // a second comma is dropped; a node listing a string twice counts once; xlnx -> xilinx;
  // __symbols__ is bookkeeping, vpu is not a default name.
  EXPECT_THAT(dt, ElementsAre(Pair("beta.devicetree.org/acme-board-x", "1"),
                              Pair("beta.devicetree.org/arm-cortex-a53", "2"),
                              Pair("beta.devicetree.org/arm-mali-bifrost", "1"),
                              Pair("beta.devicetree.org/rockchip-rk3588-rknn-core", "1"),
                              Pair("beta.devicetree.org/xilinx-zynqmp", "1")));
}

TEST(DeviceTree, NodeOptionAddsNames) {
  DiscoveryOptions options;
  options.dtb = TestdataBin() / "nested-names.dtb";
  options.extra_node_names = {"vpu"};
  Labels all = LabelsFor(options);
  EXPECT_EQ(all["beta.devicetree.org/acme-video-codec"], "1");
}

TEST(DeviceTree, BoardModelWithNonAsciiBytesIsSanitised) {
  DiscoveryOptions options;
  options.dtb = TestdataBin() / "nested-names.dtb";
  Labels all = LabelsFor(options);
  EXPECT_EQ(all["edgefd.io/board.model"], "Example-Board-rev-2");
  for (const auto& [k, v] : all) {
    EXPECT_TRUE(IsValidLabelKey(k)) << k;
    EXPECT_TRUE(IsValidLabelValue(v)) << v;
  }
}

TEST(DeviceTree, DtNodeDecodesPropertyShapes) {
  DtNode node;
  node.name = "cpu@100";
  node.properties["compatible"] = std::string("a,b\0c,d\0", 8);
  node.properties["no-nul"] = "plain";
  node.properties["reg"] = std::string("\x00\x00\x01\x00\x12\x34\x56\x78", 8);
  EXPECT_EQ(node.BaseName(), "cpu");
  EXPECT_THAT(node.Strings("compatible"), ElementsAre("a,b", "c,d"));
  EXPECT_THAT(node.Strings("no-nul"), ElementsAre("plain"));
  EXPECT_THAT(node.Cells("reg"), ElementsAre(0x100u, 0x12345678u));
  EXPECT_TRUE(node.Enabled());
  node.properties["status"] = std::string("disabled\0", 9);
  EXPECT_FALSE(node.Enabled());
}

}  // namespace
}  // namespace edgefd
