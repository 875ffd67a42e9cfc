#include "edgefd/discovery/labels.h"

#include <gtest/gtest.h>

namespace edgefd {
namespace {

TEST(SanitizeLabelName, KeepsValidNames) {
  EXPECT_EQ(SanitizeLabelName("nvidia-jetson-nano"), "nvidia-jetson-nano");
  EXPECT_EQ(SanitizeLabelName("a.b_c-d"), "a.b_c-d");
}

TEST(SanitizeLabelName, ReplacesAndCollapsesInvalidBytes) {
  EXPECT_EQ(SanitizeLabelName("NVIDIA Jetson  Nano (Dev Kit)"), "NVIDIA-Jetson-Nano-Dev-Kit");
  EXPECT_EQ(SanitizeLabelName("\xff\xfe"
                              "abc\x01"),
            "abc");
  EXPECT_EQ(SanitizeLabelName("---"), "");
}

TEST(CompatibleToLabelName, FollowsTheDevicetreeLabellerRules) {
  EXPECT_EQ(CompatibleToLabelName("nvidia,tegra210-gm20b"), "nvidia-tegra210-gm20b");
  EXPECT_EQ(CompatibleToLabelName("xlnx,zynqmp"), "xilinx-zynqmp");
  EXPECT_EQ(CompatibleToLabelName("arm,cortex-a53,extra"), "arm-cortex-a53");
  EXPECT_EQ(CompatibleToLabelName("simple-bus"), "simple-bus");
}

}  // namespace
}  // namespace edgefd
