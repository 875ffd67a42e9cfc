// Classification rules and the core identity tables, on topologies built in the test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/labels.h"

namespace edgefd {
namespace {

using ::testing::ElementsAre;

CpuTopology Make(std::vector<std::tuple<std::string, int, int>> per_cpu) {
  CpuTopology t;
  t.arch = "arm64";
  int id = 0;
  for (const auto& [model, capacity, mhz] : per_cpu) {
    CpuCore c;
    c.id = id++;
    c.model = model;
    c.capacity = capacity;
    c.max_mhz = mhz;
    t.cores.push_back(c);
  }
  ClassifyCpus(t);
  return t;
}

std::vector<std::string> Names(const CpuTopology& t) {
  std::vector<std::string> out;
  for (const CpuClass& c : t.classes) out.push_back(c.name);
  return out;
}

TEST(ClassifyCpus, DynamIqPrimeCoreOfTheSameModelIsItsOwnClass) {
  // Snapdragon 855-like: 4x A55, 3x A76 at 2419 MHz, 1x A76 "prime" at 2841 MHz.
  CpuTopology t = Make({{"cortex-a55", 356, 1785},
                        {"cortex-a55", 356, 1785},
                        {"cortex-a55", 356, 1785},
                        {"cortex-a55", 356, 1785},
                        {"cortex-a76", 871, 2419},
                        {"cortex-a76", 871, 2419},
                        {"cortex-a76", 871, 2419},
                        {"cortex-a76", 1024, 2841}});
  ASSERT_THAT(Names(t), ElementsAre("big", "mid", "little"));
  EXPECT_THAT(t.classes[0].cpus, ElementsAre(7));
  EXPECT_THAT(t.classes[1].cpus, ElementsAre(4, 5, 6));
  EXPECT_EQ(t.classes[1].capacity, 871);
  EXPECT_THAT(t.classes[2].cpus, ElementsAre(0, 1, 2, 3));

  Labels labels;
  Inventory inv;
  inv.cpu = t;
  AddCpuLabels(inv, labels);
  EXPECT_EQ(labels["edgefd.io/cpu.mid.model"], "cortex-a76");
  EXPECT_EQ(labels["edgefd.io/cpu.mid.cores"], "3");
  EXPECT_EQ(labels["edgefd.io/cpu.mid.max-mhz"], "2419");
  EXPECT_EQ(labels["edgefd.io/cpu.big.capacity"], "1024");
  EXPECT_EQ(labels.count("edgefd.io/cpu.model"), 0u);
}

TEST(ClassifyCpus, SameModelWithinFivePercentIsOneClass) {
  // A vendor RK3588 kernel: the second A76 cluster binned slightly lower.
  CpuTopology t = Make({{"cortex-a55", 414, 1800},
                        {"cortex-a55", 414, 1800},
                        {"cortex-a76", 1024, 2352},
                        {"cortex-a76", 1024, 2352},
                        {"cortex-a76", 1004, 2304},
                        {"cortex-a76", 1004, 2304}});
  ASSERT_THAT(Names(t), ElementsAre("big", "little"));
  EXPECT_THAT(t.classes[0].cpus, ElementsAre(2, 3, 4, 5));
  EXPECT_EQ(t.classes[0].capacity, 1024);
  EXPECT_EQ(t.classes[0].max_mhz, 2352);
}

TEST(ClassifyCpus, FourGroupsFoldTheMiddleOnesIntoMid) {
  // Snapdragon 8 Gen 2-like: X3 + 2x A715 + 2x A710 + 3x A510.
  CpuTopology t = Make({{"cortex-a510", 400, 2016},
                        {"cortex-a510", 400, 2016},
                        {"cortex-a510", 400, 2016},
                        {"cortex-a715", 870, 2803},
                        {"cortex-a715", 870, 2803},
                        {"cortex-a710", 860, 2803},
                        {"cortex-a710", 860, 2803},
                        {"cortex-x3", 1024, 3187}});
  ASSERT_THAT(Names(t), ElementsAre("big", "mid", "little"));
  EXPECT_EQ(t.classes[1].model, "cortex-a715_cortex-a710");
  EXPECT_THAT(t.classes[1].cpus, ElementsAre(3, 4, 5, 6));
  EXPECT_EQ(t.classes[1].capacity, 870);
}

TEST(ClassifyCpus, AllDefaultCapacitiesRankByTheCoreTableAndCarryNoCapacity) {
  // A kernel without capacity-dmips-mhz reports 1024 everywhere.
  CpuTopology t = Make({{"cortex-a53", 1024, 1416}, {"cortex-a72", 1024, 1800}});
  ASSERT_THAT(Names(t), ElementsAre("big", "little"));
  EXPECT_EQ(t.classes[0].model, "cortex-a72");
  EXPECT_EQ(t.classes[0].capacity, 0);
  EXPECT_EQ(t.classes[1].capacity, 0);
}

TEST(ClassifyCpus, HomogeneousIsOneAllClassAndOnlyTheModelLabel) {
  CpuTopology t = Make({{"cortex-a72", 1024, 1500}, {"cortex-a72", 1024, 1500}});
  ASSERT_THAT(Names(t), ElementsAre("all"));
  Inventory inv;
  inv.cpu = t;
  Labels labels;
  AddCpuLabels(inv, labels);
  EXPECT_EQ(labels, (Labels{{"edgefd.io/cpu.arch", "arm64"},
                            {"edgefd.io/cpu.cores", "2"},
                            {"edgefd.io/cpu.heterogeneous", "false"},
                            {"edgefd.io/cpu.model", "cortex-a72"}}));
}

TEST(ClassifyCpus, OfflineCoresJoinNoClass) {
  CpuTopology t;
  for (int i = 0; i < 4; ++i) {
    CpuCore c;
    c.id = i;
    c.model = i < 2 ? "cortex-a53" : "cortex-a72";
    c.capacity = i < 2 ? 381 : 1024;
    c.online = i < 2;
    t.cores.push_back(c);
  }
  ClassifyCpus(t);
  ASSERT_THAT(Names(t), ElementsAre("all"));
  EXPECT_THAT(t.classes[0].cpus, ElementsAre(0, 1));
}

TEST(ComputeCapacityFromDmips, MatchesTheKernelsRoundingDown) {
  std::vector<CpuCore> cores(2);
  cores[0].dmips_mhz = 539;
  cores[0].max_mhz = 1400;
  cores[1].dmips_mhz = 1024;
  cores[1].max_mhz = 2000;
  ComputeCapacityFromDmips(cores);
  EXPECT_EQ(cores[0].capacity, 377);
  EXPECT_EQ(cores[1].capacity, 1024);
  cores[1].max_mhz = 0;  // a frequency missing: the dmips alone
  ComputeCapacityFromDmips(cores);
  EXPECT_EQ(cores[0].capacity, 539);
}

TEST(CoreTables, KnownPartsHaveNamesUnknownOnesKeepTheirId) {
  EXPECT_EQ(ArmCoreModel(0x41, 0xc07), "cortex-a7");
  EXPECT_EQ(ArmCoreModel(0x41, 0xc0f), "cortex-a15");
  EXPECT_EQ(ArmCoreModel(0x41, 0xd03), "cortex-a53");
  EXPECT_EQ(ArmCoreModel(0x41, 0xd0b), "cortex-a76");
  EXPECT_EQ(ArmCoreModel(0x41, 0xd82), "cortex-x4");
  EXPECT_EQ(ArmCoreModel(0x4e, 0x004), "carmel");
  EXPECT_EQ(ArmCoreModel(0x4e, 0x003), "denver2");
  EXPECT_EQ(ArmCoreModel(0x61, 0x023), "firestorm");
  EXPECT_EQ(ArmCoreModel(0x41, 0xd99), "arm-0xd99");
  EXPECT_EQ(ArmCoreModel(0x99, 0x123), "impl-0x99-0x123");
  EXPECT_EQ(CoreArch("cortex-a15"), "arm");
  EXPECT_EQ(CoreArch("cortex-a53"), "arm64");
  EXPECT_EQ(CoreArch("u74-mc"), "riscv64");
  EXPECT_EQ(CoreArch("arm-0xd99"), "");
  EXPECT_GT(CorePerfPerMhz("cortex-a72"), CorePerfPerMhz("cortex-a53"));
  EXPECT_GT(CorePerfPerMhz("golden-cove"), CorePerfPerMhz("gracemont"));
}

TEST(CoreTables, CompatiblesNameTheSameModelsAsMidr) {
  EXPECT_EQ(CompatibleCoreModel("arm,cortex-a72"), ArmCoreModel(0x41, 0xd08));
  EXPECT_EQ(CompatibleCoreModel("nvidia,tegra194-carmel"), ArmCoreModel(0x4e, 0x004));
  EXPECT_EQ(CompatibleCoreModel("nvidia,tegra186-denver"), ArmCoreModel(0x4e, 0x003));
  EXPECT_EQ(CompatibleCoreModel("sifive,u74-mc"), "u74-mc");
  EXPECT_EQ(CompatibleCoreModel("ARM,Cortex-A7"), "cortex-a7");
  EXPECT_EQ(CompatibleCoreModel("\xff,\x01"), "");
}

TEST(CoreTables, X86ModelNamesBecomeShortLabelValues) {
  EXPECT_EQ(X86ModelName("13th Gen Intel(R) Core(TM) i5-13600K"), "intel-core-i5-13600k");
  EXPECT_EQ(X86ModelName("12th Gen Intel(R) Core(TM) i9-12900K"), "intel-core-i9-12900k");
  EXPECT_EQ(X86ModelName("Intel(R) Xeon(R) Silver 4208 CPU @ 2.10GHz"), "intel-xeon-silver-4208");
  EXPECT_EQ(X86ModelName("AMD EPYC 7763 64-Core Processor"), "amd-epyc-7763");
  EXPECT_EQ(X86ModelName("AMD Ryzen 7 5800X 8-Core Processor"), "amd-ryzen-7-5800x");
  EXPECT_EQ(X86ModelName(""), "");
  EXPECT_EQ(IntelHybridCoreNames(6, 0x97),
            std::make_pair(std::string("golden-cove"), std::string("gracemont")));
  EXPECT_EQ(IntelHybridCoreNames(6, 85), std::nullopt);
}

TEST(CoreTables, MachineNamesBecomeKubernetesArches) {
  EXPECT_EQ(NormalizeArch("x86_64"), "amd64");
  EXPECT_EQ(NormalizeArch("aarch64"), "arm64");
  EXPECT_EQ(NormalizeArch("armv7l"), "arm");
  EXPECT_EQ(NormalizeArch("riscv64"), "riscv64");
}

}  // namespace
}  // namespace edgefd
