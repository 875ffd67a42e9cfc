#include "edgefd/common/allocation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

TEST(AllocationNames, FollowTheContract) {
  EXPECT_EQ(DevicesVariable("movidius-ncs"), "EDGEFD_MOVIDIUS_NCS_DEVICES");
  EXPECT_EQ(DevnodesVariable("edgetpu"), "EDGEFD_EDGETPU_DEVNODES");
  EXPECT_EQ(DevicesVariable("acme.npu-v2"), "EDGEFD_ACME_NPU_V2_DEVICES");
  EXPECT_EQ(CpusVariable("big"), "EDGEFD_BIG_CPUS");
  EXPECT_EQ(CpusVariable("mid"), "EDGEFD_MID_CPUS");
  EXPECT_EQ(CpusVariable("little"), "EDGEFD_LITTLE_CPUS");
  EXPECT_EQ(DeviceMetadataVariable("edgetpu-1-1-2", "SERIAL"), "EDGEFD_EDGETPU_1_1_2_SERIAL");
  EXPECT_EQ(DeviceMetadataVariable("cpu4", "CORE_CLASS"), "EDGEFD_CPU4_CORE_CLASS");
}

TEST(AllocationNames, CoreClassOfACoreResourceOnly) {
  EXPECT_EQ(CoreClassOf("big-cpu"), "big");
  EXPECT_EQ(CoreClassOf("little-cpu"), "little");
  for (const char* other : {"edgetpu", "big", "huge-cpu", "big-cpus", "-cpu", ""}) {
    EXPECT_EQ(CoreClassOf(other), "") << other;
  }
}

TEST(ParseAllocationEnv, ReadsEveryVariableOfTheContractAndIgnoresTheRest) {
  auto env = ParseAllocationEnv({"PATH=/bin", "EDGEFD_BIG_CPUS=4,5", "EDGEFD_LITTLE_CPUS=0-3",
                                 DevicesVariable("movidius-ncs") + "=1-1.2,,1-1.3",
                                 DevnodesVariable("movidius-ncs") + "=/dev/bus/usb/001/004",
                                 "EDGEFD_EDGETPU_DEVICES=0000:01:00.0",
                                 "EDGEFD_EDGETPU_DEVNODES=", "EDGEFD_VERSION=1"});
  ASSERT_TRUE(env.ok()) << env.error().message;
  EXPECT_THAT(env->cpus,
              ElementsAre(Pair("big", ElementsAre(4, 5)), Pair("little", ElementsAre(0, 1, 2, 3))));
  EXPECT_THAT(env->devices, ElementsAre(Pair("EDGETPU", ElementsAre("0000:01:00.0")),
                                        Pair("MOVIDIUS_NCS", ElementsAre("1-1.2", "1-1.3"))));
  // Set but empty (no node allocated) is not the same as not set.
  EXPECT_THAT(env->devnodes,
              ElementsAre(Pair("EDGETPU", IsEmpty()),
                          Pair("MOVIDIUS_NCS", ElementsAre("/dev/bus/usb/001/004"))));
}

TEST(ParseAllocationEnv, ABadCpuListNamesTheVariable) {
  auto env = ParseAllocationEnv({"EDGEFD_MID_CPUS=4,x"});
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(env.error().message, HasSubstr("EDGEFD_MID_CPUS=4,x"));
}

TEST(AllocationList, JoinsAndSplitsBack) {
  EXPECT_EQ(JoinAllocationList({"a", "b"}), "a,b");
  EXPECT_THAT(SplitAllocationList(JoinAllocationList({"1-1.2", "0000:01:00.0"})),
              ElementsAre("1-1.2", "0000:01:00.0"));
  EXPECT_THAT(SplitAllocationList(""), IsEmpty());
}

}  // namespace
}  // namespace edgefd
