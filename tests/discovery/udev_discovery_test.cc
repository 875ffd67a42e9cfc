#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/udev_testbed.h"

namespace edgefd {
namespace {

using ::testing::ElementsAre;
using testing::Testbed;

// Labels from accelerators and cameras only (this machine's CPU labels are not the point).
Labels DeviceLabels(const Inventory& inv) {
  Labels labels;
  AddDeviceLabels(inv, labels);
  return labels;
}

Result<DiscoveryReport> DiscoverIn(const Testbed& tb,
                                   std::vector<std::filesystem::path> rules = {}) {
  DiscoveryOptions options;
  options.root = tb.Root();
  options.udev = true;
  options.rule_files = std::move(rules);
  return Discover(options);
}

std::vector<std::string> Ids(const Inventory& inv, const std::string& rule) {
  std::vector<std::string> out;
  for (const Device& d : inv.devices) {
    if (d.rule == rule) out.push_back(d.id);
  }
  return out;
}

const Device* Find(const Inventory& inv, const std::string& rule, const std::string& id) {
  for (const Device& d : inv.devices) {
    if (d.rule == rule && d.id == id) return &d;
  }
  return nullptr;
}

using UmockdevDiscovery = testing::HostTestbedTest;

// Each device class alone on a host gives exactly its labels.
struct Case {
  const char* file;
  Labels labels;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << (c.file != nullptr ? c.file : "(host only)");
}

class UmockdevDeviceClass : public UmockdevDiscovery, public ::testing::WithParamInterface<Case> {};

TEST_P(UmockdevDeviceClass, LabelsExactly) {
  if (GetParam().file != nullptr) {
    ASSERT_TRUE(tb_->Plug(GetParam().file));
  }
  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(DeviceLabels(report->inventory), GetParam().labels);
  EXPECT_THAT(report->warnings, ::testing::IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Testbeds, UmockdevDeviceClass,
    ::testing::Values(
        Case{"ncs2-pair.umockdev",
             {{"edgefd.io/accel.movidius-ncs", "true"},
              {"edgefd.io/accel.movidius-ncs.count", "2"}}},
        Case{"coral-usb-bootloader.umockdev",
             {{"edgefd.io/accel.edgetpu", "true"}, {"edgefd.io/accel.edgetpu.count", "1"}}},
        Case{"coral-usb-runtime.umockdev",
             {{"edgefd.io/accel.edgetpu", "true"}, {"edgefd.io/accel.edgetpu.count", "1"}}},
        Case{"coral-pcie.umockdev",
             {{"edgefd.io/accel.edgetpu", "true"}, {"edgefd.io/accel.edgetpu.count", "1"}}},
        Case{"hailo8.umockdev",
             {{"edgefd.io/accel.hailo", "true"}, {"edgefd.io/accel.hailo.count", "1"}}},
        Case{"nvidia-dgpu.umockdev",
             {{"edgefd.io/accel.nvidia-gpu", "true"}, {"edgefd.io/accel.nvidia-gpu.count", "1"}}},
        Case{"webcam.umockdev", {{"edgefd.io/camera", "true"}, {"edgefd.io/camera.count", "1"}}},
        Case{nullptr, {}}),
    [](const ::testing::TestParamInfo<Case>& info) {
      return testing::FileParamName(info.param.file);
    });

TEST_F(UmockdevDiscovery, AllDevicesOnOneNodeWithStableIdsAndNodes) {
  for (const char* f :
       {"ncs2-pair.umockdev", "coral-usb-bootloader.umockdev", "coral-pcie.umockdev",
        "hailo8.umockdev", "nvidia-dgpu.umockdev", "webcam.umockdev"}) {
    ASSERT_TRUE(tb_->Plug(f));
  }
  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  const Inventory& inv = report->inventory;
  EXPECT_EQ(DeviceLabels(inv), (Labels{{"edgefd.io/accel.edgetpu", "true"},
                                       {"edgefd.io/accel.edgetpu.count", "2"},
                                       {"edgefd.io/accel.hailo", "true"},
                                       {"edgefd.io/accel.hailo.count", "1"},
                                       {"edgefd.io/accel.movidius-ncs", "true"},
                                       {"edgefd.io/accel.movidius-ncs.count", "2"},
                                       {"edgefd.io/accel.nvidia-gpu", "true"},
                                       {"edgefd.io/accel.nvidia-gpu.count", "1"},
                                       {"edgefd.io/camera", "true"},
                                       {"edgefd.io/camera.count", "1"}}));
  EXPECT_THAT(Ids(inv, "movidius-ncs"), ElementsAre("1-1", "1-2"));
  EXPECT_THAT(Ids(inv, "edgetpu"), ElementsAre("0000:01:00.0", "1-3"));

  const Device* apex = Find(inv, "edgetpu", "0000:01:00.0");
  ASSERT_NE(apex, nullptr);
  EXPECT_THAT(apex->devnodes, ElementsAre("/dev/apex_0"));
  EXPECT_EQ(apex->subsystem, "pci");
  EXPECT_EQ(apex->driver, "apex");
  EXPECT_EQ(apex->vendor_id + ":" + apex->product_id, "1ac1:089a");
  EXPECT_TRUE(apex->resource);

  const Device* ncs = Find(inv, "movidius-ncs", "1-2");
  ASSERT_NE(ncs, nullptr);
  EXPECT_THAT(ncs->devnodes, ElementsAre("/dev/bus/usb/001/003"));
  EXPECT_EQ(ncs->syspath, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2");

  const Device* hailo = Find(inv, "hailo", "0000:02:00.0");
  ASSERT_NE(hailo, nullptr);
  EXPECT_THAT(hailo->devnodes, ElementsAre("/dev/hailo0"));

  // The GPU's HDMI audio function (10de, class 0403) is not a GPU.
  EXPECT_THAT(Ids(inv, "nvidia-gpu"), ElementsAre("0000:03:00.0"));
  const Device* gpu = Find(inv, "nvidia-gpu", "0000:03:00.0");
  EXPECT_EQ(gpu->numa_node, 0);
  EXPECT_THAT(gpu->devnodes, ElementsAre("/dev/dri/card1", "/dev/dri/renderD128"));

  // One camera: the metadata node (no capture capability) rides along, not counted twice.
  const Device* cam = Find(inv, "camera", "1-4");
  ASSERT_NE(cam, nullptr);
  EXPECT_TRUE(cam->camera);
  EXPECT_FALSE(cam->resource);
  EXPECT_THAT(cam->devnodes, ElementsAre("/dev/media0", "/dev/video0", "/dev/video1"));
}

TEST_F(UmockdevDiscovery, CoralKeepsItsIdWhenItsProductIdChanges) {
  ASSERT_TRUE(tb_->Plug("coral-usb-bootloader.umockdev"));
  auto before = DiscoverIn(*tb_);
  ASSERT_TRUE(before) << before.error().message;
  const Device* boot = Find(before->inventory, "edgetpu", "1-3");
  ASSERT_NE(boot, nullptr);
  EXPECT_EQ(boot->vendor_id + ":" + boot->product_id, "1a6e:089a");

  // Firmware loaded: the stick drops off the bus and comes back as 18d1:9302 in the same port.
  tb_->Unplug("/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3");
  ASSERT_TRUE(tb_->Plug("coral-usb-runtime.umockdev"));
  auto after = DiscoverIn(*tb_);
  ASSERT_TRUE(after) << after.error().message;
  const Device* run = Find(after->inventory, "edgetpu", "1-3");
  ASSERT_NE(run, nullptr);
  EXPECT_EQ(run->vendor_id + ":" + run->product_id, "18d1:9302");
  EXPECT_EQ(run->serial, "1a2b3c4d5e6f");  // the sysfs attribute, its newline dropped
  EXPECT_EQ(boot->serial, "");             // the bootloader reports none
  EXPECT_THAT(Ids(after->inventory, "edgetpu"), ElementsAre("1-3"));
  EXPECT_EQ(DeviceLabels(after->inventory), DeviceLabels(before->inventory));
}

TEST_F(UmockdevDiscovery, AcceleratorWithoutItsDriverNodeIsUnhealthyAndUnlabelled) {
  ASSERT_TRUE(tb_->Plug("hailo8.umockdev"));
  // `rmmod hailo_pci`: the character device goes; the PCI function stays.
  tb_->Unplug("/sys/devices/pci0000:00/0000:02:00.0/hailo_chardev/hailo0");
  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  const Device* hailo = Find(report->inventory, "hailo", "0000:02:00.0");
  ASSERT_NE(hailo, nullptr);
  EXPECT_FALSE(hailo->healthy);
  EXPECT_THAT(hailo->devnodes, ::testing::IsEmpty());
  EXPECT_EQ(DeviceLabels(report->inventory), Labels{});
}

using testing::WriteDtNode;

TEST_F(UmockdevDiscovery, DevicetreeGpuAndNpuMergeWithTheirPlatformDevices) {
  std::filesystem::path base = tb_->Root() + "/sys/firmware/devicetree/base";
  WriteDtNode(base, {"radxa,rock-5b", "rockchip,rk3588"});
  WriteDtNode(base / "gpu@fb000000", {"rockchip,rk3588-mali", "arm,mali-valhall-csf"});
  WriteDtNode(base / "npu@fdab0000", {"rockchip,rk3588-rknn-core"});
  WriteDtNode(base / "npu@fdac0000", {"rockchip,rk3588-rknn-core"});
  WriteDtNode(base / "npu@fdad0000", {"rockchip,rk3588-rknn-core"}, "disabled");
  ASSERT_TRUE(tb_->Plug("rk3588-soc.umockdev"));

  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  const Inventory& inv = report->inventory;
  EXPECT_EQ(DeviceLabels(inv), (Labels{{"edgefd.io/accel.mali-gpu", "true"},
                                       {"edgefd.io/accel.mali-gpu.count", "1"},
                                       {"edgefd.io/accel.rknpu", "true"},
                                       {"edgefd.io/accel.rknpu.count", "2"}}));
  const Device* mali = Find(inv, "mali-gpu", "/gpu@fb000000");
  ASSERT_NE(mali, nullptr);
  EXPECT_THAT(mali->devnodes, ElementsAre("/dev/dri/renderD129"));
  const Device* npu0 = Find(inv, "rknpu", "/npu@fdab0000");
  ASSERT_NE(npu0, nullptr);
  EXPECT_THAT(npu0->devnodes, ElementsAre("/dev/accel/accel0"));
  // The second core has no node of its own yet; it does not borrow the GPU's or core 0's.
  const Device* npu1 = Find(inv, "rknpu", "/npu@fdac0000");
  ASSERT_NE(npu1, nullptr);
  EXPECT_THAT(npu1->devnodes, ::testing::IsEmpty());
}

// The Raspberry Pi 5's V3D and the i.MX 93's Ethos-U65 as their drivers bind them: the rule's
// device, its node, and the driver's version from the module it names.
TEST_F(UmockdevDiscovery, V3dAndEthosUGetTheirNodesAndDriverVersions) {
  std::filesystem::path base = tb_->Root() + "/sys/firmware/devicetree/base";
  WriteDtNode(base, {"raspberrypi,5-model-b", "brcm,bcm2712"});
  WriteDtNode(base / "axi/gpu@1002000000", {"brcm,2712-v3d"});
  WriteDtNode(base / "soc@0/npu@4a900000", {"fsl,imx93-npu", "arm,ethos-u65"});
  ASSERT_TRUE(tb_->Plug("rpi5-v3d.umockdev"));
  ASSERT_TRUE(tb_->Plug("imx93-ethos-u.umockdev"));
  // What the modules say about themselves, below the root discovery reads.
  std::filesystem::create_directories(tb_->Root() + "/sys/module/v3d");
  std::ofstream(tb_->Root() + "/sys/module/v3d/version") << "v1.2\n";
  std::filesystem::create_directories(tb_->Root() + "/sys/module/ethosu");
  std::ofstream(tb_->Root() + "/sys/module/ethosu/srcversion") << "6A5E4C3B2A19F8E7D6C5B4A\n";

  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  const Inventory& inv = report->inventory;
  EXPECT_EQ(DeviceLabels(inv),
            (Labels{{"edgefd.io/accel.ethos-u-npu", "true"},
                    {"edgefd.io/accel.ethos-u-npu.count", "1"},
                    {"edgefd.io/accel.ethos-u-npu.driver-version", "6A5E4C3B2A19F8E7D6C5B4A"},
                    {"edgefd.io/accel.v3d-gpu", "true"},
                    {"edgefd.io/accel.v3d-gpu.count", "1"},
                    {"edgefd.io/accel.v3d-gpu.driver-version", "v1.2"}}));
  const Device* v3d = Find(inv, "v3d-gpu", "/axi/gpu@1002000000");
  ASSERT_NE(v3d, nullptr);
  EXPECT_THAT(v3d->devnodes, ElementsAre("/dev/dri/renderD128"));
  EXPECT_TRUE(v3d->resource);
  EXPECT_EQ(v3d->driver_version, "v1.2");
  const Device* npu = Find(inv, "ethos-u-npu", "/soc@0/npu@4a900000");
  ASSERT_NE(npu, nullptr);
  EXPECT_THAT(npu->devnodes, ElementsAre("/dev/accel/accel0"));
  EXPECT_EQ(Labels(RenderLabels(inv))["edgefd.io/soc"], "brcm-bcm2712");
}

TEST_F(UmockdevDiscovery, UsbFirmwareVersionFromBcdDevice) {
  ASSERT_TRUE(tb_->Plug("ncs2-pair.umockdev"));
  auto report = DiscoverIn(*tb_);
  ASSERT_TRUE(report) << report.error().message;
  const Device* ncs = Find(report->inventory, "movidius-ncs", "1-1");
  ASSERT_NE(ncs, nullptr);
  EXPECT_EQ(ncs->usb_bcd, "0100");
  EXPECT_EQ(ncs->firmware_version, "1.0.0");
  // The usb driver is built in, with no version of its own in this testbed.
  EXPECT_EQ(ncs->driver_version, "");
}

std::vector<std::string> Syspaths(const std::vector<UdevRecord>& records) {
  std::vector<std::string> out;
  for (const UdevRecord& r : records) out.push_back(r.syspath);
  return out;
}

TEST_F(UmockdevDiscovery, VirtualDevicesNoRuleCanUseAreLeftOutOfTheRuleDrivenEnumeration) {
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  auto rules = LoadRules({});
  ASSERT_TRUE(rules) << rules.error().message;
  auto all = EnumerateUdev({"misc"});
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_THAT(
      Syspaths(*all),
      ElementsAre("/sys/devices/virtual/misc/fuse", "/sys/devices/virtual/misc/loop-control",
                  "/sys/devices/virtual/misc/nvmap", "/sys/devices/virtual/misc/xclmgmt"));
  // jetson-gpu names /dev/nvmap; nothing names fuse, loop-control or xclmgmt.
  auto needed = EnumerateUdev({"misc"}, &*rules);
  ASSERT_TRUE(needed) << needed.error().message;
  EXPECT_THAT(Syspaths(*needed), ElementsAre("/sys/devices/virtual/misc/nvmap"));
  ASSERT_EQ(needed->size(), 1u);
  EXPECT_EQ((*needed)[0].devnode, "/dev/nvmap");
  EXPECT_EQ((*needed)[0].anchor_id, "/sys/devices/virtual/misc/nvmap");
}

TEST_F(UmockdevDiscovery, VirtualDevicesStillMatchByPropertyAndServeDevicetreeGpus) {
  std::filesystem::path base = tb_->Root() + "/sys/firmware/devicetree/base";
  WriteDtNode(base, {"nvidia,p3768-0000+p3767-0005", "nvidia,tegra234"});
  WriteDtNode(base / "gpu@17000000", {"nvidia,ga10b"});
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  std::filesystem::path file = tb_->Root() + "/site.yaml";
  std::ofstream(file) << "rules:\n  - name: xilinx\n"
                         "    match: {property: {ID_SITE_ACCEL: \"1\"}}\n";
  auto report = DiscoverIn(*tb_, {file});
  ASSERT_TRUE(report) << report.error().message;
  const Inventory& inv = report->inventory;
  EXPECT_EQ(DeviceLabels(inv), (Labels{{"edgefd.io/accel.jetson-gpu", "true"},
                                       {"edgefd.io/accel.jetson-gpu.count", "1"},
                                       {"edgefd.io/accel.xilinx", "true"},
                                       {"edgefd.io/accel.xilinx.count", "1"}}));
  const Device* gpu = Find(inv, "jetson-gpu", "/gpu@17000000");
  ASSERT_NE(gpu, nullptr);
  EXPECT_THAT(gpu->devnodes, ElementsAre("/dev/nvmap"));
  const Device* xcl = Find(inv, "xilinx", "/sys/devices/virtual/misc/xclmgmt");
  ASSERT_NE(xcl, nullptr);
  EXPECT_THAT(xcl->devnodes, ElementsAre("/dev/xclmgmt"));
}

TEST_F(UmockdevDiscovery, ARuleSubsystemGlobFindsAClassNoBuiltInRuleNames) {
  ASSERT_TRUE(tb_->Plug("virtual-misc.umockdev"));
  std::filesystem::path file = tb_->Root() + "/site.yaml";
  std::ofstream(file) << "rules:\n  - name: vivante\n    match: {subsystem: \"galc*\"}\n";
  auto report = DiscoverIn(*tb_, {file});
  ASSERT_TRUE(report) << report.error().message;
  const Device* gpu = Find(report->inventory, "vivante", "/sys/devices/virtual/galcore/galcore");
  ASSERT_NE(gpu, nullptr);
  EXPECT_THAT(gpu->devnodes, ElementsAre("/dev/galcore"));
  EXPECT_EQ(Ids(report->inventory, "vivante").size(), 1u);
}

TEST(MatchDevices, VivanteIsAnNpuUnderAnNpuNodeAndAGpuUnderAGpuNode) {
  auto rules = LoadRules({});
  ASSERT_TRUE(rules) << rules.error().message;
  std::vector<DtNodeInfo> coral_dev_board = {{"/soc@0/gpu@38000000", "gpu", {"vivante,gc"}}};
  std::vector<DtNodeInfo> vim3 = {
      {"/npu@ff100000", "npu", {"vivante,gc"}},
      {"/soc/gpu@ffe40000", "gpu", {"amlogic,meson-g12a-mali", "arm,mali-bifrost"}}};
  std::vector<Device> gpus = MatchDevices(*rules, {}, coral_dev_board);
  ASSERT_EQ(gpus.size(), 1u);
  EXPECT_EQ(gpus[0].rule, "vivante-gpu");
  EXPECT_EQ(gpus[0].id, "/soc@0/gpu@38000000");
  std::vector<Device> devices = MatchDevices(*rules, {}, vim3);
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].rule, "mali-gpu");
  EXPECT_EQ(devices[1].rule, "vivante-npu");
  EXPECT_EQ(devices[1].id, "/npu@ff100000");
  EXPECT_EQ(devices[1].subsystem, "devicetree");
  EXPECT_TRUE(devices[1].healthy);
}

TEST(MatchDevices, JetsonGpuFromItsDevicetreeNode) {
  auto rules = LoadRules({});
  ASSERT_TRUE(rules) << rules.error().message;
  UdevRecord nvmap;
  nvmap.syspath = "/sys/devices/virtual/misc/nvmap";
  nvmap.subsystem = "misc";
  nvmap.devnode = "/dev/nvmap";
  nvmap.anchor_id = nvmap.anchor_syspath = nvmap.syspath;
  nvmap.anchor_subsystem = "misc";
  std::vector<Device> devices =
      MatchDevices(*rules, {nvmap}, {{"/gpu@57000000", "gpu", {"nvidia,gm20b"}}});
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].rule, "jetson-gpu");
  EXPECT_EQ(devices[0].id, "/gpu@57000000");
  EXPECT_THAT(devices[0].devnodes, ElementsAre("/dev/nvmap"));
}

TEST(MatchDevices, VideoNodesWithoutCaptureAreNotCameras) {
  auto rules = LoadRules({});
  ASSERT_TRUE(rules) << rules.error().message;
  // A hardware codec (memory-to-memory) and a metadata-only node: video4linux, no capture.
  auto node = [](const std::string& name, const std::string& caps, const std::string& anchor) {
    UdevRecord r;
    r.syspath = "/sys/devices/platform/" + anchor + "/video4linux/" + name;
    r.subsystem = "video4linux";
    r.devnode = "/dev/" + name;
    r.properties["ID_V4L_CAPABILITIES"] = caps;
    r.anchor_id = "/" + anchor;
    r.anchor_syspath = "/sys/devices/platform/" + anchor;
    r.anchor_subsystem = "platform";
    return r;
  };
  EXPECT_THAT(
      MatchDevices(
          *rules,
          {node("video0", ":", "video-codec@fdb50000"), node("video1", ":", "isp@ff910000")}, {}),
      ::testing::IsEmpty());
  // A CSI camera with two capture nodes on one ISP is one camera.
  std::vector<Device> cams = MatchDevices(
      *rules,
      {node("video2", ":capture:", "isp@ff910000"), node("video3", ":capture:", "isp@ff910000")},
      {});
  ASSERT_EQ(cams.size(), 1u);
  EXPECT_EQ(cams[0].id, "/isp@ff910000");
  EXPECT_THAT(cams[0].devnodes, ElementsAre("/dev/video2", "/dev/video3"));
}

TEST_F(UmockdevDiscovery, SiteRulesFileAddsADeviceClass) {
  ASSERT_TRUE(tb_->Plug("hailo8.umockdev"));
  std::filesystem::path file = tb_->Root() + "/site.yaml";
  std::ofstream(file) << "rules:\n  - name: hailo\n    enabled: false\n"
                         "  - name: my-npu\n    match: {pci-class: \"12\", driver: hailo}\n";
  auto report = DiscoverIn(*tb_, {file});
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(DeviceLabels(report->inventory),
            (Labels{{"edgefd.io/accel.my-npu", "true"}, {"edgefd.io/accel.my-npu.count", "1"}}));
}

TEST(RealSys, DryRunPrintsNoAcceleratorsAndNoWarnings) {
  // This machine's own /sys, through real libudev. Skipped where it really has accelerators
  // or cameras by the built-in rules.
  if (getenv("UMOCKDEV_DIR") != nullptr) GTEST_SKIP() << "a testbed is active in this process";
  auto rules = LoadRules({});
  ASSERT_TRUE(rules);
  auto records = EnumerateUdev(UdevSubsystems(*rules));
  ASSERT_TRUE(records) << records.error().message;
  if (!MatchDevices(*rules, *records, {}).empty()) GTEST_SKIP() << "this machine has accelerators";

  testing::CommandResult cli = testing::RunCommand({testing::LabellerBin(), "--dry-run"});
  EXPECT_EQ(cli.exit_code, 0);
  EXPECT_THAT(cli.out, ::testing::Not(::testing::HasSubstr("edgefd.io/accel.")));
  EXPECT_THAT(cli.out, ::testing::Not(::testing::HasSubstr("edgefd.io/camera")));
  // Nothing on stderr but the note that there is no devicetree (none on x86).
  std::istringstream err(cli.err);
  for (std::string line; std::getline(err, line);) {
    EXPECT_THAT(line, ::testing::HasSubstr("info: no devicetree found"));
  }
}

}  // namespace
}  // namespace edgefd
