// Runs discovery over every real blob in shared/devicetrees and checks the result against the
// folder's MANIFEST.tsv. Skips when shared/ is absent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/dt_directory_form.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using testing::SharedDevicetrees;

std::vector<std::string> Split(const std::string& s, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos - start));
    if (pos == std::string::npos) break;
    start = pos + sep.size();
  }
  return out;
}

std::vector<std::map<std::string, std::string>> ReadManifest() {
  std::ifstream in(SharedDevicetrees() / "MANIFEST.tsv");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> header = Split(line, "\t");
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::vector<std::string> cells = Split(line, "\t");
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

class Corpus : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(SharedDevicetrees() / "MANIFEST.tsv")) {
      GTEST_SKIP() << "no shared/devicetrees at " << SharedDevicetrees();
    }
    rows_ = ReadManifest();
    ASSERT_GE(rows_.size(), 15u);
  }
  std::vector<std::map<std::string, std::string>> rows_;
};

TEST_F(Corpus, EveryBlobGetsTheRootAndCpuLabelsOfItsManifestRow) {
  for (const auto& row : rows_) {
    SCOPED_TRACE(row.at("file"));
    DiscoveryOptions options;
    options.root = "/nonexistent-root";  // the blob alone, nothing from this machine
    options.dtb = SharedDevicetrees() / row.at("file");
    auto report = Discover(options);
    ASSERT_TRUE(report.ok()) << report.error().message;
    Labels labels = RenderLabels(report->inventory);

    std::vector<std::string> root_compatible = Split(row.at("root_compatible"), "; ");
    for (const std::string& c : root_compatible) {
      EXPECT_EQ(labels[std::string(kDtLabelPrefix) + CompatibleToLabelName(c)], "1") << c;
    }
    EXPECT_EQ(labels["edgefd.io/board"], CompatibleToLabelName(root_compatible.front()));
    // The chip where the tree names it before its family, else the last compatible.
    SocCompatibles soc = FindSoc(root_compatible);
    EXPECT_EQ(labels["edgefd.io/soc"], CompatibleToLabelName(soc.soc));
    if (soc.family.empty()) {
      EXPECT_EQ(soc.soc, root_compatible.back());
      EXPECT_EQ(labels.count("edgefd.io/soc.family"), 0u);
    } else {
      EXPECT_EQ(labels["edgefd.io/soc.family"], CompatibleToLabelName(root_compatible.back()));
    }
    EXPECT_EQ(labels["edgefd.io/board.model"], SanitizeLabelValue(row.at("model")));

    // "arm,cortex-a53 x4; arm,cortex-a72 x2"
    for (const std::string& item : Split(row.at("cpu_compatibles"), "; ")) {
      size_t x = item.rfind(" x");
      ASSERT_NE(x, std::string::npos) << item;
      std::string key = std::string(kDtLabelPrefix) + CompatibleToLabelName(item.substr(0, x));
      EXPECT_EQ(labels[key], item.substr(x + 2)) << key;
    }
    for (const auto& [k, v] : labels) {
      EXPECT_TRUE(IsValidLabelKey(k)) << k;
      EXPECT_TRUE(IsValidLabelValue(v)) << k << "=" << v;
    }
  }
}

TEST_F(Corpus, DisabledAcceleratorNodesGiveNoLabels) {
  // MANIFEST's accel_media_nodes lists each GPU/NPU with its status; a disabled gpu/npu node
  // must not contribute its compatibles.
  for (const auto& row : rows_) {
    SCOPED_TRACE(row.at("file"));
    auto tree = ReadDeviceTreeBlobFile(SharedDevicetrees() / row.at("file"));
    ASSERT_TRUE(tree.ok()) << tree.error().message;
    std::vector<DtNodeInfo> nodes = ExtractNamedNodes(*tree, DefaultDtNodeNames());
    for (const std::string& entry : Split(row.at("accel_media_nodes"), "; ")) {
      if (entry == "-" || entry.find(" disabled") == std::string::npos) continue;
      std::string path = entry.substr(0, entry.find(' '));
      for (const DtNodeInfo& n : nodes) EXPECT_NE(n.path, path) << "disabled node labelled";
    }
  }
}

using testing::WriteDirectoryForm;

TEST_F(Corpus, EveryBlobReadsTheSameInDirectoryForm) {
  for (const auto& row : rows_) {
    SCOPED_TRACE(row.at("file"));
    auto blob = ReadDeviceTreeBlobFile(SharedDevicetrees() / row.at("file"));
    ASSERT_TRUE(blob.ok()) << blob.error().message;
    testing::TempDir tmp;
    WriteDirectoryForm(*blob, tmp.path() / "sys/firmware/devicetree/base");
    std::vector<std::string> warnings;
    auto dir = ReadDeviceTreeDir(tmp.path() / "sys/firmware/devicetree/base", &warnings);
    ASSERT_TRUE(dir.ok()) << dir.error().message;
    EXPECT_TRUE(warnings.empty());
    EXPECT_TRUE(*blob == *dir);

    DiscoveryOptions live;
    live.root = tmp.path();
    DiscoveryOptions dtb;
    dtb.root = "/nonexistent-root";
    dtb.dtb = SharedDevicetrees() / row.at("file");
    auto a = Discover(live);
    auto b = Discover(dtb);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(RenderLabels(a->inventory), RenderLabels(b->inventory));
    // Beyond the labels: every core's cluster, order and frequency (cpu-map and OPP tables
    // are found through phandles, which a live tree's reader fetches only where needed).
    EXPECT_TRUE(a->inventory == b->inventory);
  }
}

TEST_F(Corpus, RockPro64DryRunPrintsItsBoardSocAndCpuLabels) {
  auto result = testing::RunCommand({testing::LabellerBin(), "--dry-run", "--dtb",
                                     (SharedDevicetrees() / "rockpro64.dtb").string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::HasSubstr("beta.devicetree.org/arm-cortex-a53=4\n"));
  EXPECT_THAT(result.out, ::testing::HasSubstr("beta.devicetree.org/arm-cortex-a72=2\n"));
  EXPECT_THAT(result.out, ::testing::HasSubstr("beta.devicetree.org/pine64-rockpro64=1\n"));
  EXPECT_THAT(result.out, ::testing::HasSubstr("beta.devicetree.org/rockchip-rk3399=1\n"));
  EXPECT_THAT(result.out, ::testing::HasSubstr("edgefd.io/board=pine64-rockpro64-v2.1\n"));
  EXPECT_THAT(result.out, ::testing::HasSubstr("edgefd.io/soc=rockchip-rk3399\n"));
}

// What a blob alone gives (nothing from this machine).
Result<DiscoveryReport> DiscoverBlob(const std::string& file) {
  DiscoveryOptions options;
  options.root = "/nonexistent-root";
  options.dtb = SharedDevicetrees() / file;
  return Discover(options);
}

// edgefd.io/soc names the chip, not its family (the family is edgefd.io/soc.family), on the
// boards where the tree lists both; elsewhere the one SoC compatible.
TEST_F(Corpus, SocLabelNamesTheChipAndSocFamilyItsFamily) {
  struct Want {
    const char* file;
    const char* soc;
    const char* family;  // nullptr: no family label
  };
  for (const Want& w : {Want{"odroid-xu4.dtb", "samsung-exynos5800", "samsung-exynos5"},
                        Want{"odroid-hc1.dtb", "samsung-exynos5800", "samsung-exynos5"},
                        Want{"khadas-vim3.dtb", "amlogic-a311d", "amlogic-g12b"},
                        Want{"odroid-n2.dtb", "amlogic-s922x", "amlogic-g12b"},
                        Want{"jetson-agx-orin.dtb", "nvidia-tegra234", nullptr},
                        Want{"rockpro64.dtb", "rockchip-rk3399", nullptr},
                        Want{"rpi4b.dtb", "brcm-bcm2711", nullptr}}) {
    SCOPED_TRACE(w.file);
    auto report = DiscoverBlob(w.file);
    ASSERT_TRUE(report.ok()) << report.error().message;
    Labels labels = RenderLabels(report->inventory);
    EXPECT_EQ(labels["edgefd.io/soc"], w.soc);
    if (w.family != nullptr) {
      EXPECT_EQ(labels["edgefd.io/soc.family"], w.family);
    } else {
      EXPECT_EQ(labels.count("edgefd.io/soc.family"), 0u);
    }
  }
}

// The accelerators of point 5 on the real blobs: label, count, and (DRA) resource, each from
// its enabled node.
TEST_F(Corpus, V3dAndVivanteGpusOfRealBoardsAreAccelerators) {
  struct Want {
    const char* file;
    const char* rule;
    const char* id;
  };
  for (const Want& w : {Want{"rpi4b.dtb", "v3d-gpu", "/scb-bus@fc000000/gpu@7ec00000"},
                        Want{"coral-dev-board.dtb", "vivante-gpu", "/soc@0/gpu@38000000"},
                        Want{"khadas-vim3.dtb", "vivante-npu", "/npu@ff100000"}}) {
    SCOPED_TRACE(w.file);
    auto report = DiscoverBlob(w.file);
    ASSERT_TRUE(report.ok()) << report.error().message;
    Labels labels = RenderLabels(report->inventory);
    EXPECT_EQ(labels[std::string("edgefd.io/accel.") + w.rule], "true");
    EXPECT_EQ(labels[std::string("edgefd.io/accel.") + w.rule + ".count"], "1");
    std::vector<std::string> ids;
    for (const Device& d : report->inventory.devices) {
      if (d.rule == w.rule) ids.push_back(d.id);
      EXPECT_TRUE(d.resource) << d.rule;
    }
    EXPECT_THAT(ids, ::testing::ElementsAre(w.id));
  }
  // The Raspberry Pi 3's V3D is the older VideoCore IV one (brcm,bcm2835-v3d, a `v3d` node):
  // not this rule's.
  auto report = DiscoverBlob("rpi3b.dtb");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(RenderLabels(report->inventory).count("edgefd.io/accel.v3d-gpu"), 0u);
  // The ODROID-N2's NPU node is disabled: no vivante-npu there.
  report = DiscoverBlob("odroid-n2.dtb");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(RenderLabels(report->inventory).count("edgefd.io/accel.vivante-npu"), 0u);
}

}  // namespace
}  // namespace edgefd
