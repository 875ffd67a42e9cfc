#include "edgefd/nri/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd::nri {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const std::vector<int> kOnline = {0, 1, 2, 3};

Workload W(std::string id, std::vector<std::string> env, std::string cpus = "") {
  Workload w;
  w.id = id;
  w.name = "default/pod/" + id;
  w.holding = ReadHolding(env, kOnline);
  w.cpus = std::move(cpus);
  return w;
}

TEST(ReadHolding, TakesEveryClassAndDropsCoresThatAreNotOnline) {
  Holding h = ReadHolding({"PATH=/bin", "EDGEFD_BIG_CPUS=3", "EDGEFD_LITTLE_CPUS=0,7"}, kOnline);
  EXPECT_THAT(h.cpus, ElementsAre(0, 3));
  EXPECT_THAT(h.offline, ElementsAre(7));
  EXPECT_TRUE(h.holder());
  EXPECT_TRUE(h.invalid());
}

TEST(ReadHolding, AMalformedListHoldsNothingAndSaysWhy) {
  Holding h = ReadHolding({"EDGEFD_MID_CPUS=two"}, kOnline);
  EXPECT_FALSE(h.holder());
  ASSERT_FALSE(h.env.ok());
  EXPECT_THAT(h.env.error().message, HasSubstr("EDGEFD_MID_CPUS=two"));
}

TEST(ReadHolding, NoVariablesNoHolding) {
  Holding h = ReadHolding({"EDGEFD_EDGETPU_DEVICES=1-1"}, kOnline);
  EXPECT_FALSE(h.holder());
  EXPECT_FALSE(h.invalid());
}

TEST(TargetCpus, HolderGetsExactlyItsCores) {
  Holding h = ReadHolding({"EDGEFD_BIG_CPUS=1,2"}, kOnline);
  EXPECT_EQ(TargetCpus(h, {1, 2}, kOnline, Policy::kExclusive), (std::vector<int>{1, 2}));
  EXPECT_EQ(TargetCpus(h, {1, 2}, kOnline, Policy::kShared), (std::vector<int>{1, 2}));
}

TEST(TargetCpus, OthersGetTheRestOnlyWithTheExclusivePolicy) {
  Holding none;
  EXPECT_EQ(TargetCpus(none, {1}, kOnline, Policy::kExclusive), (std::vector<int>{0, 2, 3}));
  EXPECT_EQ(TargetCpus(none, {1}, kOnline, Policy::kShared), std::nullopt);
  EXPECT_EQ(TargetCpus(none, {}, kOnline, Policy::kExclusive), kOnline);
}

TEST(TargetCpus, NeverAnEmptyCpuset) {
  Holding none;
  EXPECT_EQ(TargetCpus(none, kOnline, kOnline, Policy::kExclusive), std::nullopt);
}

TEST(CoreTracker, SynchronizeMovesOthersOffHeldCoresAndPinsHolders) {
  CoreTracker t(kOnline, Policy::kExclusive);
  auto updates =
      t.Synchronize({W("holder", {"EDGEFD_BIG_CPUS=3"}), W("plain", {}), W("already", {}, "0-2")});
  EXPECT_THAT(updates,
              UnorderedElementsAre(CpusetUpdate{"holder", "3"}, CpusetUpdate{"plain", "0,1,2"}));
  EXPECT_THAT(t.Held(), ElementsAre(3));
  EXPECT_EQ(t.holders(), 1u);
  EXPECT_EQ(t.confined(), 2u);
}

TEST(CoreTracker, SharedPolicyPinsHoldersOnly) {
  CoreTracker t(kOnline, Policy::kShared);
  auto updates = t.Synchronize({W("holder", {"EDGEFD_BIG_CPUS=3"}), W("plain", {})});
  EXPECT_THAT(updates, ElementsAre(CpusetUpdate{"holder", "3"}));
  CoreTracker::Created c = t.Create(W("new", {}));
  EXPECT_EQ(c.cpus, std::nullopt);
  EXPECT_THAT(c.updates, IsEmpty());
}

TEST(CoreTracker, ANewHolderIsPinnedAndTheOthersMoveOff) {
  CoreTracker t(kOnline, Policy::kExclusive);
  ASSERT_THAT(t.Synchronize({W("plain", {})}), IsEmpty());
  CoreTracker::Created c = t.Create(W("holder", {"EDGEFD_BIG_CPUS=1"}));
  EXPECT_EQ(c.cpus, "1");
  EXPECT_THAT(c.updates, ElementsAre(CpusetUpdate{"plain", "0,2,3"}));
  // A container created afterwards starts off the held core.
  CoreTracker::Created plain = t.Create(W("late", {}));
  EXPECT_EQ(plain.cpus, "0,2,3");
  EXPECT_THAT(plain.updates, IsEmpty());
}

TEST(CoreTracker, ReleasingAHolderGivesItsCoresBackOnce) {
  CoreTracker t(kOnline, Policy::kExclusive);
  t.Synchronize({W("holder", {"EDGEFD_BIG_CPUS=1"}, "1"), W("plain", {}, "0,2-3")});
  EXPECT_THAT(t.Release("holder"), ElementsAre(CpusetUpdate{"plain", "0,1,2,3"}));
  // Stop, then remove: the second call has nothing to do.
  EXPECT_THAT(t.Release("holder"), IsEmpty());
  EXPECT_THAT(t.Release("plain"), IsEmpty());
  EXPECT_THAT(t.Held(), IsEmpty());
}

TEST(CoreTracker, WhenEveryCoreIsHeldOthersAreLeftAloneWithAWarning) {
  CoreTracker t({0, 1}, Policy::kExclusive);
  t.Synchronize({W("plain", {})});
  CoreTracker::Created c = t.Create(W("all", {"EDGEFD_BIG_CPUS=0,1"}));
  EXPECT_EQ(c.cpus, "0,1");
  EXPECT_THAT(c.updates, IsEmpty());
  std::vector<std::string> warnings = t.TakeWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("every online core"));
  EXPECT_EQ(t.Create(W("late", {})).cpus, std::nullopt);
}

TEST(CoreTracker, ACoreNamedTwiceIsWarnedAbout) {
  CoreTracker t(kOnline, Policy::kExclusive);
  t.Synchronize({W("a", {"EDGEFD_BIG_CPUS=2"})});
  t.TakeWarnings();
  CoreTracker::Created c = t.Create(W("b", {"EDGEFD_BIG_CPUS=2,3"}));
  EXPECT_EQ(c.cpus, "2,3");
  std::vector<std::string> warnings = t.TakeWarnings();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("default/pod/b holds core(s) 2"));
}

TEST(CoreTracker, AHolderWhoseCoresAreAllOfflineIsAnOrdinaryContainer) {
  CoreTracker t(kOnline, Policy::kExclusive);
  t.Synchronize({W("holder", {"EDGEFD_BIG_CPUS=1"}, "1")});
  CoreTracker::Created c = t.Create(W("bogus", {"EDGEFD_MID_CPUS=9"}));
  EXPECT_EQ(c.cpus, "0,2,3");
  EXPECT_THAT(t.Held(), ElementsAre(1));
}

TEST(CoreTracker, ReassertKeepsTheCpusetAnUpdateWouldChange) {
  CoreTracker t(kOnline, Policy::kExclusive);
  t.Synchronize({W("holder", {"EDGEFD_BIG_CPUS=1"}, "1"), W("plain", {}, "0,2,3")});
  EXPECT_EQ(t.Reassert("holder", "0-3"), "1");
  EXPECT_EQ(t.Reassert("plain", "0-3"), "0,2,3");
  EXPECT_EQ(t.Reassert("plain", "0,2-3"), std::nullopt);
  EXPECT_EQ(t.Reassert("plain", ""), std::nullopt);
  EXPECT_EQ(t.Reassert("unknown", "0"), std::nullopt);
}

}  // namespace
}  // namespace edgefd::nri
