#include "edgefd/common/cpu_list.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd {
namespace {

using ::testing::ElementsAre;

TEST(ParseCpuList, ReadsKernelListsAndRejectsGarbage) {
  EXPECT_THAT(*ParseCpuList("0-3,6,8-9\n"), ElementsAre(0, 1, 2, 3, 6, 8, 9));
  EXPECT_THAT(*ParseCpuList("5"), ElementsAre(5));
  EXPECT_TRUE(ParseCpuList("\n")->empty());
  EXPECT_FALSE(ParseCpuList("3-1"));
  EXPECT_FALSE(ParseCpuList("a-b"));
  EXPECT_FALSE(ParseCpuList("0,,1"));
  EXPECT_FALSE(ParseCpuList("0-4294967296"));
}

TEST(FormatCpuList, IsWhatParseCpuListReads) {
  EXPECT_EQ(FormatCpuList({4, 5}), "4,5");
  EXPECT_EQ(FormatCpuList({}), "");
  EXPECT_THAT(*ParseCpuList(FormatCpuList({0, 2, 3, 17})), ElementsAre(0, 2, 3, 17));
}

}  // namespace
}  // namespace edgefd
