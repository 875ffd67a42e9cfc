// The CPU source over the sysfs/procfs fixtures in testdata/cpu/ (written by
// testdata/cpu/generate.py): every cpu label, and the per-class CPU lists, of each board.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

fs::path Fixture(const std::string& name) { return testing::TestdataDir() / "cpu" / name; }

Labels CpuLabels(const Inventory& inventory) {
  Labels all = RenderLabels(inventory);
  Labels cpu;
  for (const auto& [k, v] : all) {
    if (k.starts_with("edgefd.io/cpu.")) cpu[k] = v;
  }
  return cpu;
}

DiscoveryReport DiscoverFixture(const std::string& name) {
  DiscoveryOptions options;
  options.root = Fixture(name);
  auto report = Discover(options);
  EXPECT_TRUE(report.ok()) << report.error().message;
  return report.ok() ? *report : DiscoveryReport{};
}

struct Case {
  std::string fixture;
  Labels labels;  // without the "edgefd.io/cpu." prefix
  std::map<std::string, std::vector<int>> classes;
};

std::vector<int> Range(int lo, int hi) {
  std::vector<int> v;
  for (int i = lo; i <= hi; ++i) v.push_back(i);
  return v;
}

Labels HeteroLabels(const std::string& arch, int cores, const std::string& big_model, int big_cores,
                    int big_mhz, int big_cap, const std::string& little_model, int little_cores,
                    int little_mhz, int little_cap) {
  Labels l = {{"arch", arch},
              {"cores", std::to_string(cores)},
              {"heterogeneous", "true"},
              {"big.model", big_model},
              {"big.cores", std::to_string(big_cores)},
              {"little.model", little_model},
              {"little.cores", std::to_string(little_cores)}};
  if (big_mhz) l["big.max-mhz"] = std::to_string(big_mhz);
  if (big_cap) l["big.capacity"] = std::to_string(big_cap);
  if (little_mhz) l["little.max-mhz"] = std::to_string(little_mhz);
  if (little_cap) l["little.capacity"] = std::to_string(little_cap);
  return l;
}

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // DESIGN.md: the A7s' capacity is 539 DMIPS/MHz x 1400 MHz against 1024 x 2000, 377.
      {"odroid-xu4",
       HeteroLabels("arm", 8, "cortex-a15", 4, 2000, 1024, "cortex-a7", 4, 1400, 377),
       {{"big", Range(4, 7)}, {"little", Range(0, 3)}}},
      {"rk3399",
       HeteroLabels("arm64", 6, "cortex-a72", 2, 1800, 1024, "cortex-a53", 4, 1416, 381),
       {{"big", Range(4, 5)}, {"little", Range(0, 3)}}},
      // Two A76 clusters at the same capacity are one class.
      {"rk3588",
       HeteroLabels("arm64", 8, "cortex-a76", 4, 2400, 1024, "cortex-a55", 4, 1800, 397),
       {{"big", Range(4, 7)}, {"little", Range(0, 3)}}},
      // The A53s clock higher than the A73s; capacity still ranks them little.
      {"amlogic-g12b",
       HeteroLabels("arm64", 6, "cortex-a73", 4, 1908, 1024, "cortex-a53", 2, 1992, 618),
       {{"big", Range(2, 5)}, {"little", Range(0, 1)}}},
      {"tegra194",
       {{"arch", "arm64"}, {"cores", "8"}, {"heterogeneous", "false"}, {"model", "carmel"}},
       {{"all", Range(0, 7)}}},
      {"rpi4",
       {{"arch", "arm64"}, {"cores", "4"}, {"heterogeneous", "false"}, {"model", "cortex-a72"}},
       {{"all", Range(0, 3)}}},
      // 6 P-cores x 2 threads + 8 E-cores; x86 kernels before 6.12 expose no capacities.
      {"intel-hybrid",
       [] {
         Labels l = HeteroLabels("amd64", 20, "raptor-cove", 12, 5100, 0, "gracemont", 8, 3900, 0);
         l["threads-per-core"] = "2";
         return l;
       }(),
       {{"big", Range(0, 11)}, {"little", Range(12, 19)}}},
      {"x86-server",
       {{"arch", "amd64"},
        {"cores", "32"},
        {"heterogeneous", "false"},
        {"model", "intel-xeon-silver-4208"},
        {"threads-per-core", "2"}},
       {{"all", Range(0, 31)}}},
      // No cpu_capacity: ranked by the core table x max frequency, no capacity labels.
      {"no-capacity",
       HeteroLabels("arm64", 6, "cortex-a72", 2, 1800, 0, "cortex-a53", 4, 1416, 0),
       {{"big", Range(4, 5)}, {"little", Range(0, 3)}}},
      // cpu6-7 offline: not counted, not in a class.
      {"cpus-offline",
       HeteroLabels("arm64", 6, "cortex-a76", 2, 2400, 1024, "cortex-a55", 4, 1800, 397),
       {{"big", Range(4, 5)}, {"little", Range(0, 3)}}},
      // No cpufreq driver: no max-mhz labels, capacities still from the kernel.
      {"no-cpufreq",
       HeteroLabels("arm64", 6, "cortex-a73", 4, 0, 1024, "cortex-a53", 2, 0, 592),
       {{"big", Range(2, 5)}, {"little", Range(0, 1)}}},
      // Garbled midr_el1 on three CPUs: models from /proc/cpuinfo instead.
      {"garbage-midr",
       HeteroLabels("arm64", 6, "cortex-a72", 2, 1800, 1024, "cortex-a53", 4, 1416, 381),
       {{"big", Range(4, 5)}, {"little", Range(0, 3)}}},
      // Bare sysfs: models, frequencies, clusters and capacities from the devicetree.
      {"devicetree-fallback",
       HeteroLabels("arm64", 6, "cortex-a72", 2, 1800, 1024, "cortex-a53", 4, 1416, 381),
       {{"big", Range(4, 5)}, {"little", Range(0, 3)}}},
  };
  return cases;
}

class CpuFixture : public ::testing::TestWithParam<Case> {};

TEST_P(CpuFixture, GetsExactlyItsCpuLabelsAndClasses) {
  const Case& c = GetParam();
  DiscoveryReport report = DiscoverFixture(c.fixture);
  Labels expected;
  for (const auto& [k, v] : c.labels) expected["edgefd.io/cpu." + k] = v;
  EXPECT_EQ(CpuLabels(report.inventory), expected);

  std::map<std::string, std::vector<int>> classes;
  for (const CpuClass& cls : report.inventory.cpu.classes) classes[cls.name] = cls.cpus;
  EXPECT_EQ(classes, c.classes);
  EXPECT_EQ(report.inventory.cpu.source, "sysfs");
}

INSTANTIATE_TEST_SUITE_P(Boards, CpuFixture, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           std::string name = info.param.fixture;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(CpuFixtures, EveryFixtureDirectoryHasACase) {
  std::set<std::string> covered;
  for (const Case& c : Cases()) covered.insert(c.fixture);
  for (const auto& entry : fs::directory_iterator(testing::TestdataDir() / "cpu")) {
    if (entry.is_directory()) {
      EXPECT_TRUE(covered.count(entry.path().filename().string())) << entry.path();
    }
  }
}

TEST(CpuFixtures, OfflineCpusAreReportedNotCounted) {
  const CpuTopology& cpu = DiscoverFixture("cpus-offline").inventory.cpu;
  ASSERT_EQ(cpu.cores.size(), 8u);
  EXPECT_EQ(cpu.OnlineCount(), 6);
  EXPECT_FALSE(cpu.cores[6].online);
  EXPECT_FALSE(cpu.cores[7].online);
  EXPECT_EQ(cpu.cores[6].cluster, 2);
  EXPECT_THAT(CpuClassLists(cpu),
              ElementsAre(Pair("big", ElementsAre(4, 5)), Pair("little", ElementsAre(0, 1, 2, 3)),
                          Pair("offline", ElementsAre(6, 7))));
}

TEST(CpuFixtures, GarbledMidrIsAWarningNamingTheFile) {
  DiscoveryReport report = DiscoverFixture("garbage-midr");
  std::vector<std::string> midr_warnings;
  for (const std::string& w : report.warnings) {
    if (w.find("midr_el1") != std::string::npos) midr_warnings.push_back(w);
  }
  ASSERT_EQ(midr_warnings.size(), 3u);
  EXPECT_THAT(midr_warnings[0],
              HasSubstr("cpu0/regs/identification/midr_el1: not a MIDR value ('garbage')"));
  EXPECT_THAT(midr_warnings[1], HasSubstr("cpu4/regs/identification/midr_el1"));
  EXPECT_THAT(midr_warnings[2], HasSubstr("cpu5/regs/identification/midr_el1"));
}

TEST(CpuFixtures, InventoryCarriesTopologyAndNuma) {
  const CpuTopology& server = DiscoverFixture("x86-server").inventory.cpu;
  ASSERT_EQ(server.cores.size(), 32u);
  EXPECT_EQ(server.threads_per_core, 2);
  // Linux numbers the first thread of every core first: cpu8 is socket 1's first core and
  // cpu16 its sibling on socket 0.
  EXPECT_EQ(server.cores[8].package, 1);
  EXPECT_EQ(server.cores[8].numa_node, 1);
  EXPECT_EQ(server.cores[16].package, 0);
  EXPECT_EQ(server.cores[16].numa_node, 0);
  EXPECT_EQ(server.cores[16].core, 0);
  EXPECT_EQ(server.cores[31].max_mhz, 3200);

  const CpuTopology& rk3588 = DiscoverFixture("rk3588").inventory.cpu;
  std::vector<int> clusters;
  for (const CpuCore& c : rk3588.cores) clusters.push_back(c.cluster);
  EXPECT_THAT(clusters, ElementsAre(0, 0, 0, 0, 1, 1, 2, 2));
}

TEST(CpuFixtures, DevicetreeFallbackFillsModelsClustersAndCapacities) {
  const CpuTopology& cpu = DiscoverFixture("devicetree-fallback").inventory.cpu;
  ASSERT_EQ(cpu.cores.size(), 6u);
  EXPECT_EQ(cpu.cores[0].dmips_mhz, 485);
  EXPECT_EQ(cpu.cores[4].dmips_mhz, 1024);
  EXPECT_EQ(cpu.cores[4].cluster, 1);
  EXPECT_EQ(cpu.cores[3].capacity, 381);
}

void Write(const fs::path& p, const std::string& data);

TEST(CpuFixtures, DevicetreeFallbackMatchesCpusToNodesThroughOfNode) {
  // The boot CPU (cpu0) is the A72 at cpu@100 here, so position in the tree is wrong and only
  // the of_node links tell which node is which CPU.
  testing::TempDir tmp;
  fs::path cpu = tmp.path() / "sys/devices/system/cpu";
  fs::path base = tmp.path() / "sys/firmware/devicetree/base/cpus";
  Write(cpu / "possible", "0-1\n");
  Write(cpu / "online", "0-1\n");
  Write(base / "cpu@0/device_type", std::string("cpu\0", 4));
  Write(base / "cpu@0/compatible", std::string("arm,cortex-a53\0", 15));
  Write(base / "cpu@100/device_type", std::string("cpu\0", 4));
  Write(base / "cpu@100/compatible", std::string("arm,cortex-a72\0", 15));
  Write(base / "cpu@100/reg", std::string("\0\0\x01\0", 4));
  fs::create_directories(cpu / "cpu0");
  fs::create_symlink("../../../../firmware/devicetree/base/cpus/cpu@100", cpu / "cpu0/of_node");
  fs::create_directories(cpu / "cpu1");
  fs::create_symlink("../../../../firmware/devicetree/base/cpus/cpu@0", cpu / "cpu1/of_node");
  DiscoveryOptions options;
  options.root = tmp.path();
  auto report = Discover(options);
  ASSERT_TRUE(report.ok()) << report.error().message;
  ASSERT_EQ(report->inventory.cpu.cores.size(), 2u);
  EXPECT_EQ(report->inventory.cpu.cores[0].model, "cortex-a72");
  EXPECT_EQ(report->inventory.cpu.cores[1].model, "cortex-a53");
}

TEST(CpuFixtures, RiscvCpuinfoGivesArchAndUarch) {
  // A VisionFive 2 (JH7110, 4x SiFive U74) kernel's cpuinfo; RISC-V has no MIDR.
  testing::TempDir tmp;
  Write(tmp.path() / "sys/devices/system/cpu/possible", "0-3\n");
  Write(tmp.path() / "sys/devices/system/cpu/online", "0-3\n");
  std::string cpuinfo;
  for (int i = 0; i < 4; ++i) {
    cpuinfo += "processor\t: " + std::to_string(i) + "\nhart\t\t: " + std::to_string(i + 1) +
               "\nisa\t\t: rv64imafdc_zicntr_zicsr_zifencei_zihpm_zba_zbb\nmmu\t\t: sv39\n"
               "uarch\t\t: sifive,u74-mc\nmvendorid\t: 0x489\n\n";
  }
  Write(tmp.path() / "proc/cpuinfo", cpuinfo);
  DiscoveryOptions options;
  options.root = tmp.path();
  auto report = Discover(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(CpuLabels(report->inventory), (Labels{{"edgefd.io/cpu.arch", "riscv64"},
                                                  {"edgefd.io/cpu.cores", "4"},
                                                  {"edgefd.io/cpu.heterogeneous", "false"},
                                                  {"edgefd.io/cpu.model", "u74-mc"}}));
}

TEST(CpuFixtures, ARootWithoutCpuInformationGivesNoCpuLabels) {
  testing::TempDir tmp;
  DiscoveryOptions options;
  options.root = tmp.path();
  auto report = Discover(options);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(CpuLabels(report->inventory).empty());
  EXPECT_TRUE(CpuClassLists(report->inventory.cpu).empty());
}

void Write(const fs::path& p, const std::string& data) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << data;
}

TEST(CpuFixtures, HostileFilesNeverCrashAndLabelsStayValid) {
  testing::TempDir tmp;
  fs::path cpu = tmp.path() / "sys/devices/system/cpu";
  Write(cpu / "possible", "0-3\n");
  Write(cpu / "online", "0-2,\xff\n");
  Write(cpu / "cpu0/cpu_capacity", "99999999999999999999\n");
  Write(cpu / "cpu1/cpu_capacity", "-5\n");
  Write(cpu / "cpu1/regs/identification/midr_el1", "0xffffffffffffffffff\n");
  Write(cpu / "cpu2/regs/identification/midr_el1", "0x00000000ff0fabc0\n");
  Write(cpu / "cpu2/cpufreq/cpuinfo_max_freq", "4294967296000\n");
  Write(cpu / "cpu3/topology/core_cpus_list", "0-99999999\n");
  Write(tmp.path() / "proc/cpuinfo",
        std::string("processor\t: 0\nCPU implementer\t: \x01\xfe\nCPU part\t:") +
            std::string(5000, 'x') + "\nprocessor : 99999999999\n");
  Write(tmp.path() / "sys/devices/cpu_core/cpus", "banana\n");
  Write(tmp.path() / "sys/devices/cpu_atom/cpus", "0\n");
  DiscoveryOptions options;
  options.root = tmp.path();
  auto report = Discover(options);
  ASSERT_TRUE(report.ok());
  Labels labels = CpuLabels(report->inventory);
  for (const auto& [k, v] : labels) {
    EXPECT_TRUE(IsValidLabelKey(k)) << k;
    EXPECT_TRUE(IsValidLabelValue(v)) << k << "=" << v;
  }
  // "0-2,\xff" is not a CPU list: every CPU is treated as online, with a warning.
  EXPECT_EQ(labels["edgefd.io/cpu.cores"], "4");
  EXPECT_EQ(report->inventory.cpu.cores[2].model, "impl-0xff-0xabc");
  EXPECT_FALSE(report->warnings.empty());
}

}  // namespace
}  // namespace edgefd
