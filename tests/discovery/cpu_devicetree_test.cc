// CPU topology from a devicetree alone: small trees built in the test, and every real blob in
// shared/devicetrees checked against its MANIFEST.tsv row (skipped when shared/ is absent).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Pair;

std::string Cells(std::initializer_list<uint32_t> cells) {
  std::string out;
  for (uint32_t c : cells) {
    char b[4] = {static_cast<char>(c >> 24), static_cast<char>(c >> 16), static_cast<char>(c >> 8),
                 static_cast<char>(c)};
    out.append(b, 4);
  }
  return out;
}

std::string Str(const std::string& s) { return s + '\0'; }

DtNode Cpu(const std::string& name, uint32_t reg, const std::string& compatible, uint32_t phandle) {
  DtNode n;
  n.name = name;
  n.properties["device_type"] = Str("cpu");
  n.properties["compatible"] = Str(compatible);
  n.properties["reg"] = Cells({reg});
  n.properties["phandle"] = Cells({phandle});
  return n;
}

DtNode Node(const std::string& name, std::vector<DtNode> children = {}) {
  DtNode n;
  n.name = name;
  n.children = std::move(children);
  return n;
}

DtNode CoreRef(const std::string& name, uint32_t phandle) {
  DtNode n = Node(name);
  n.properties["cpu"] = Cells({phandle});
  return n;
}

TEST(CpuDeviceTree, CpuMapOrderIsNaturalAndDisabledCpusAreOffline) {
  // Twelve single-core clusters: "cluster10" must come after "cluster9", not after "cluster1".
  DtNode cpus = Node("cpus");
  DtNode map = Node("cpu-map");
  for (uint32_t i = 0; i < 12; ++i) {
    DtNode cpu =
        Cpu("cpu@" + std::to_string(i), i, i == 11 ? "arm,cortex-a78" : "arm,cortex-a55", 0x40 + i);
    if (i == 5) cpu.properties["status"] = Str("disabled");
    cpus.children.push_back(cpu);
    // cluster N holds cpu@(11 - N): numbering follows the map, not reg.
    map.children.push_back(Node("cluster" + std::to_string(i), {CoreRef("core0", 0x40 + 11 - i)}));
  }
  cpus.children.push_back(map);
  DtNode root = Node("", {cpus});
  CpuTopology t = CpuTopologyFromDeviceTree(root, nullptr);
  ASSERT_EQ(t.cores.size(), 12u);
  EXPECT_EQ(t.cores[0].model, "cortex-a78");  // cluster0 -> cpu@11
  EXPECT_EQ(t.cores[0].cluster, 0);
  EXPECT_EQ(t.cores[10].cluster, 10);
  EXPECT_FALSE(t.cores[6].online);  // cpu@5 sits in cluster6
  EXPECT_EQ(t.OnlineCount(), 11);
  EXPECT_EQ(t.arch, "arm64");
  EXPECT_EQ(t.source, "devicetree");
}

TEST(CpuDeviceTree, OppTablesSkipDisabledEntriesAndLegacyTablesAreRead) {
  DtNode opp = Node("opp-table-0");
  opp.properties["phandle"] = Cells({0x99});
  for (uint32_t mhz : {600u, 1200u, 1800u}) {
    DtNode entry = Node("opp-" + std::to_string(mhz));
    uint64_t hz = static_cast<uint64_t>(mhz) * 1000000;
    entry.properties["opp-hz"] =
        Cells({static_cast<uint32_t>(hz >> 32), static_cast<uint32_t>(hz)});
    if (mhz == 1800) entry.properties["status"] = Str("disabled");
    opp.children.push_back(entry);
  }
  DtNode a = Cpu("cpu@0", 0, "arm,cortex-a53", 1);
  a.properties["operating-points-v2"] = Cells({0x99});
  a.properties["capacity-dmips-mhz"] = Cells({485});
  DtNode b = Cpu("cpu@100", 0x100, "arm,cortex-a15", 2);
  b.properties["operating-points"] = Cells({1000000, 900000, 1600000, 1100000});  // kHz, uV
  b.properties["capacity-dmips-mhz"] = Cells({1024});
  DtNode root = Node("", {Node("cpus", {a, b}), opp});
  CpuTopology t = CpuTopologyFromDeviceTree(root, nullptr);
  ASSERT_EQ(t.cores.size(), 2u);
  EXPECT_EQ(t.cores[0].max_mhz, 1200);
  EXPECT_EQ(t.cores[1].max_mhz, 1600);
  EXPECT_EQ(t.cores[0].capacity, 485 * 1200 * 1024 / (1024 * 1600));
  ASSERT_EQ(t.classes.size(), 2u);
  EXPECT_EQ(t.classes[0].model, "cortex-a15");
}

TEST(CpuDeviceTree, ATreeWithoutCpusIsAWarningNotLabels) {
  std::vector<std::string> warnings;
  CpuTopology t = CpuTopologyFromDeviceTree(Node(""), &warnings);
  EXPECT_TRUE(t.cores.empty());
  ASSERT_EQ(warnings.size(), 1u);
  Inventory inv;
  inv.cpu = t;
  Labels labels;
  AddCpuLabels(inv, labels);
  EXPECT_TRUE(labels.empty());
}

// --- The real blobs -------------------------------------------------------------------------

std::vector<std::string> Fields(const std::string& line, char sep) {
  std::vector<std::string> out;
  std::istringstream in(line);
  for (std::string f; std::getline(in, f, sep);) {
    size_t b = f.find_first_not_of(' ');
    size_t e = f.find_last_not_of(' ');
    out.push_back(b == std::string::npos ? "" : f.substr(b, e - b + 1));
  }
  return out;
}

// "arm,cortex-a53=485; arm,cortex-a72=1024" -> {cortex-a53: 485, cortex-a72: 1024}
std::map<std::string, int> PerModel(const std::string& cell) {
  std::map<std::string, int> out;
  if (cell == "-") return out;
  for (const std::string& item : Fields(cell, ';')) {
    size_t eq = item.find('=');
    out[CompatibleCoreModel(item.substr(0, eq))] = std::stoi(item.substr(eq + 1));
  }
  return out;
}

class CpuCorpus : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::path manifest = testing::SharedDevicetrees() / "MANIFEST.tsv";
    if (!fs::exists(manifest)) GTEST_SKIP() << "no " << manifest;
    std::ifstream in(manifest);
    std::string line;
    std::getline(in, line);
    std::vector<std::string> header = Fields(line, '\t');
    while (std::getline(in, line)) {
      std::vector<std::string> cells = Fields(line, '\t');
      std::map<std::string, std::string> row;
      for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
      if (!row["file"].empty()) rows_.push_back(row);
    }
    ASSERT_GE(rows_.size(), 15u);
  }

  CpuTopology Topology(const std::string& file) {
    auto tree = ReadDeviceTreeBlobFile(testing::SharedDevicetrees() / file);
    EXPECT_TRUE(tree.ok()) << tree.error().message;
    return tree.ok() ? CpuTopologyFromDeviceTree(*tree, nullptr) : CpuTopology{};
  }

  std::vector<std::map<std::string, std::string>> rows_;
};

TEST_F(CpuCorpus, EveryBlobClassifiesAsItsManifestRowSays) {
  for (auto& row : rows_) {
    SCOPED_TRACE(row["file"]);
    CpuTopology t = Topology(row["file"]);
    ASSERT_EQ(static_cast<int>(t.cores.size()), std::stoi(row["cpu_nodes"]));
    EXPECT_EQ(t.OnlineCount(), std::stoi(row["cpu_nodes"]));

    // Core models and counts: "arm,cortex-a53 x4; arm,cortex-a72 x2".
    std::map<std::string, int> expected_count;
    for (const std::string& item : Fields(row["cpu_compatibles"], ';')) {
      size_t x = item.rfind(" x");
      expected_count[CompatibleCoreModel(item.substr(0, x))] = std::stoi(item.substr(x + 2));
    }
    std::map<std::string, int> count;
    for (const CpuCore& c : t.cores) ++count[c.model];
    EXPECT_EQ(count, expected_count);

    // Per-core facts against the manifest's dmips and (naive) highest OPP.
    std::map<std::string, int> dmips = PerModel(row["capacity_dmips_mhz"]);
    std::map<std::string, int> opp = PerModel(row["cpu_max_opp_mhz"]);
    for (const CpuCore& c : t.cores) {
      EXPECT_EQ(c.dmips_mhz, dmips.count(c.model) ? dmips[c.model] : 0) << c.model;
      EXPECT_EQ(c.max_mhz, opp.count(c.model) ? opp[c.model] : 0) << c.model;
    }

    // Clusters: "cluster0=cpu@0,cpu@1 (arm,cortex-a53 x2); cluster1=..." as (size, model).
    std::multiset<std::pair<int, std::string>> expected_clusters, clusters;
    if (row["cpu_map_clusters"] != "-") {
      for (const std::string& item : Fields(row["cpu_map_clusters"], ';')) {
        size_t open = item.find('(');
        size_t x = item.rfind(" x");
        std::string model = CompatibleCoreModel(item.substr(open + 1, x - open - 1));
        expected_clusters.insert({std::stoi(item.substr(x + 2)), model});
      }
      std::map<int, std::pair<int, std::string>> by_id;
      for (const CpuCore& c : t.cores) {
        ++by_id[c.cluster].first;
        by_id[c.cluster].second = c.model;
      }
      for (const auto& [id, v] : by_id) clusters.insert(v);
      EXPECT_EQ(clusters, expected_clusters);
    }

    // Classes, derived independently: capacity = dmips x max MHz normalised to 1024.
    std::map<std::string, int> capacity;
    if (dmips.size() == expected_count.size()) {
      int64_t top = 0;
      for (const auto& [m, d] : dmips) top = std::max<int64_t>(top, int64_t{d} * opp[m]);
      for (const auto& [m, d] : dmips)
        capacity[m] = static_cast<int>(int64_t{d} * opp[m] * 1024 / top);
    }
    if (expected_count.size() == 1) {
      ASSERT_EQ(t.classes.size(), 1u);
      EXPECT_EQ(t.classes[0].name, "all");
    } else {
      ASSERT_EQ(t.classes.size(), 2u);
      auto [little, big] = std::minmax_element(
          capacity.begin(), capacity.end(), [](auto& a, auto& b) { return a.second < b.second; });
      EXPECT_EQ(t.classes[0].name, "big");
      EXPECT_EQ(t.classes[0].model, big->first);
      EXPECT_EQ(t.classes[0].capacity, 1024);
      EXPECT_EQ(static_cast<int>(t.classes[0].cpus.size()), expected_count[big->first]);
      EXPECT_EQ(t.classes[0].max_mhz, opp[big->first]);
      EXPECT_EQ(t.classes[1].name, "little");
      EXPECT_EQ(t.classes[1].model, little->first);
      EXPECT_EQ(t.classes[1].capacity, little->second);
      EXPECT_EQ(static_cast<int>(t.classes[1].cpus.size()), expected_count[little->first]);
      EXPECT_EQ(t.classes[1].max_mhz, opp[little->first]);
    }
    bool armv7 = count.count("cortex-a7") || count.count("cortex-a15");
    EXPECT_EQ(t.arch, armv7 ? "arm" : "arm64");
  }
}

TEST_F(CpuCorpus, OdroidXu4BlobGivesTheDesignsCapacities) {
  DiscoveryOptions options;
  options.dtb = testing::SharedDevicetrees() / "odroid-xu4.dtb";  // root stays "/": ignored
  auto report = Discover(options);
  ASSERT_TRUE(report.ok()) << report.error().message;
  Labels labels = RenderLabels(report->inventory);
  EXPECT_EQ(labels["edgefd.io/cpu.arch"], "arm");
  EXPECT_EQ(labels["edgefd.io/cpu.cores"], "8");
  EXPECT_EQ(labels["edgefd.io/cpu.heterogeneous"], "true");
  EXPECT_EQ(labels["edgefd.io/cpu.big.model"], "cortex-a15");
  EXPECT_EQ(labels["edgefd.io/cpu.big.cores"], "4");
  EXPECT_EQ(labels["edgefd.io/cpu.big.max-mhz"], "2000");
  EXPECT_EQ(labels["edgefd.io/cpu.big.capacity"], "1024");
  EXPECT_EQ(labels["edgefd.io/cpu.little.model"], "cortex-a7");
  EXPECT_EQ(labels["edgefd.io/cpu.little.cores"], "4");
  EXPECT_EQ(labels["edgefd.io/cpu.little.max-mhz"], "1400");
  EXPECT_EQ(labels["edgefd.io/cpu.little.capacity"], "377");
  EXPECT_EQ(labels.count("edgefd.io/cpu.model"), 0u);
  EXPECT_EQ(labels.count("edgefd.io/cpu.threads-per-core"), 0u);
  // The A7 cluster is cluster0 in cpu-map, so the little cores are cpu0-3 as on the board.
  EXPECT_THAT(
      CpuClassLists(report->inventory.cpu),
      ElementsAre(Pair("big", ElementsAre(4, 5, 6, 7)), Pair("little", ElementsAre(0, 1, 2, 3))));
}

TEST_F(CpuCorpus, Rk3588TwoA76ClustersAreOneBigClass) {
  CpuTopology t = Topology("rock-5b.dtb");
  ASSERT_EQ(t.classes.size(), 2u);
  EXPECT_THAT(t.classes[0].cpus, ElementsAre(4, 5, 6, 7));
  EXPECT_EQ(t.cores[4].cluster, 1);
  EXPECT_EQ(t.cores[6].cluster, 2);
  EXPECT_EQ(t.classes[1].capacity, 397);
}

}  // namespace
}  // namespace edgefd
