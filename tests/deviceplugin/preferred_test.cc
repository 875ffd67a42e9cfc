#include "edgefd/deviceplugin/preferred.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd::deviceplugin {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

// Eight cores in three clusters: cpu0-3 in cluster 0, cpu4-5 in 1, cpu6-7 in 2.
ResourceSnapshot Cores() {
  ResourceSnapshot s;
  s.resource = "edgefd.io/little-cpu";
  s.name = "little-cpu";
  s.kind = ResourceKind::kCpu;
  for (int i = 0; i < 8; ++i) {
    PluginDevice d;
    d.id = "cpu" + std::to_string(i);
    d.cpu = i;
    d.group = i < 4 ? 0 : (i < 6 ? 1 : 2);
    s.devices.push_back(d);
  }
  return s;
}

const std::vector<std::string> kAll = {"cpu0", "cpu1", "cpu2", "cpu3",
                                       "cpu4", "cpu5", "cpu6", "cpu7"};

TEST(PreferredAllocation, TwoCoresComeFromOneClusterThatFitsBest) {
  // Clusters 1 and 2 hold exactly two; cluster 0 stays whole for bigger requests.
  EXPECT_THAT(PreferredAllocation(Cores(), kAll, {}, 2), ElementsAre("cpu4", "cpu5"));
}

TEST(PreferredAllocation, NeverSplitsWhenOneClusterCanHoldTheRequest) {
  // Three cores: only cluster 0 holds three.
  EXPECT_THAT(PreferredAllocation(Cores(), kAll, {}, 3), ElementsAre("cpu0", "cpu1", "cpu2"));
  // cpu0 and cpu4 taken: cluster 0 still holds three.
  EXPECT_THAT(PreferredAllocation(Cores(), {"cpu1", "cpu2", "cpu3", "cpu5", "cpu6", "cpu7"}, {}, 3),
              ElementsAre("cpu1", "cpu2", "cpu3"));
}

TEST(PreferredAllocation, FewestClustersWhenNoneFits) {
  // Five cores: the four of cluster 0 plus one more, two clusters not three.
  auto picked = PreferredAllocation(Cores(), kAll, {}, 5);
  EXPECT_THAT(picked, ElementsAre("cpu0", "cpu1", "cpu2", "cpu3", "cpu4"));
}

TEST(PreferredAllocation, MustIncludeKeepsItsClusterFirst) {
  auto picked = PreferredAllocation(Cores(), kAll, {"cpu7"}, 2);
  EXPECT_THAT(picked, ElementsAre("cpu7", "cpu6"));
}

TEST(PreferredAllocation, SkipsUnhealthyAndStopsWhenShort) {
  ResourceSnapshot s = Cores();
  s.devices[5].healthy = false;  // cpu5
  EXPECT_THAT(PreferredAllocation(s, {"cpu4", "cpu5"}, {}, 2), ElementsAre("cpu4"));
}

TEST(PreferredAllocation, AcceleratorsOnOneNumaNode) {
  ResourceSnapshot s;
  s.resource = "edgefd.io/hailo";
  for (auto [id, numa] : std::vector<std::pair<std::string, int>>{{"0000:01:00.0", 0},
                                                                  {"0000:41:00.0", 1},
                                                                  {"0000:42:00.0", 1},
                                                                  {"0000:02:00.0", 0},
                                                                  {"0000:03:00.0", 0}}) {
    PluginDevice d;
    d.id = id;
    d.numa_node = numa;
    d.group = numa;
    s.devices.push_back(d);
  }
  std::vector<std::string> avail = {"0000:01:00.0", "0000:41:00.0", "0000:42:00.0", "0000:02:00.0"};
  EXPECT_THAT(PreferredAllocation(s, avail, {}, 2),
              UnorderedElementsAre("0000:01:00.0", "0000:02:00.0"));
  EXPECT_THAT(PreferredAllocation(s, avail, {"0000:41:00.0"}, 2),
              ElementsAre("0000:41:00.0", "0000:42:00.0"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
