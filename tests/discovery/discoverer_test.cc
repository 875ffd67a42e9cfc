// The Discoverer keeps the parsed devicetree across hardware events and reads it again only
// when it can have changed: an overlay applied or removed, the blob replaced, a resync.
#include <gtest/gtest.h>

#include <filesystem>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteFile;

// A writable copy of the Jetson Nano fixture root, and a Discoverer over it.
struct JetsonRoot {
  JetsonRoot() {
    fs::copy(testing::TestdataDir() / "roots/jetson-nano-blog", root, fs::copy_options::recursive);
  }
  TempDir tmp;
  const fs::path root = tmp.path() / "root";
  Discoverer d{DiscoveryOptions{root, {}, {}, {}, {}}};
};

Labels LabelsOf(Discoverer& d) {
  auto report = d.Run();
  EXPECT_TRUE(report.ok()) << (report.ok() ? "" : report.error().message);
  return report.ok() ? RenderLabels(report->inventory) : Labels{};
}

const char kOverlayLabel[] = "beta.devicetree.org/acme-npu-x1";

// What configfs shows, and the live tree gets, when an overlay adding an NPU is applied.
void ApplyNpuOverlay(const fs::path& root) {
  fs::path node = root / "sys/firmware/devicetree/base/npu@70000000";
  fs::create_directories(node);
  WriteFile(node / "compatible", std::string("acme,npu-x1\0", 12));
  WriteFile(node / "status", std::string("okay\0", 5));
  fs::create_directories(root / "sys/kernel/config/device-tree/overlays/npu");
  WriteFile(root / "sys/kernel/config/device-tree/overlays/npu/status", "applied\n");
}

TEST(Discoverer, KeepsTheLiveTreeAcrossEventsAndRereadsItWhenAnOverlayIsApplied) {
  JetsonRoot jetson;
  const fs::path& root = jetson.root;
  Discoverer& d = jetson.d;
  const Labels before = LabelsOf(d);
  ASSERT_EQ(before.count("edgefd.io/board"), 1u);
  EXPECT_EQ(LabelsOf(d), before);  // a hotplug event: same labels
  EXPECT_EQ(LabelsOf(d), before);
  EXPECT_EQ(d.devicetree_reads(), 1u) << "the live tree was walked again on every event";

  ApplyNpuOverlay(root);
  Labels with = LabelsOf(d);
  EXPECT_EQ(d.devicetree_reads(), 2u);
  EXPECT_EQ(with.count(kOverlayLabel), 1u);

  // Removing the overlay takes its nodes away again.
  fs::remove_all(root / "sys/firmware/devicetree/base/npu@70000000");
  fs::remove_all(root / "sys/kernel/config/device-tree/overlays/npu");
  EXPECT_EQ(LabelsOf(d), before);
  EXPECT_EQ(d.devicetree_reads(), 3u);
}

TEST(Discoverer, InvalidateReadsAgainWhatChangedWithoutASignal) {
  JetsonRoot jetson;
  const fs::path& root = jetson.root;
  Discoverer& d = jetson.d;
  const Labels before = LabelsOf(d);
  // A driver applied an overlay: nothing in configfs says so, and (as in sysfs, where the
  // kernel adds nodes without touching their parent's times) the tree's root looks the same.
  const fs::path base = root / "sys/firmware/devicetree/base";
  const auto mtime = fs::last_write_time(base);
  ApplyNpuOverlay(root);
  fs::remove_all(root / "sys/kernel/config");
  fs::last_write_time(base, mtime);
  EXPECT_EQ(LabelsOf(d), before);  // not seen until the resync...
  d.Invalidate();
  EXPECT_EQ(LabelsOf(d).count(kOverlayLabel), 1u);  // ... which reads the tree again
  EXPECT_EQ(d.devicetree_reads(), 2u);
}

TEST(Discoverer, RereadsABlobThatWasReplacedAndMatchesDiscover) {
  TempDir tmp;
  const fs::path dtb = tmp.path() / "board.dtb";
  fs::copy_file(testing::TestdataBin() / "jetson-nano-blog.dtb", dtb);
  DiscoveryOptions options;
  options.root = tmp.path() / "nowhere";
  options.dtb = dtb;
  Discoverer d(options);
  auto first = d.Run();
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto fresh = Discover(options);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(first->inventory, fresh->inventory);
  EXPECT_EQ(first->warnings, fresh->warnings);
  EXPECT_EQ(LabelsOf(d).at("edgefd.io/board"), "nvidia-jetson-nano");

  // Another board's blob written over it (a new file renamed into place).
  fs::copy_file(testing::TestdataBin() / "nested-names.dtb", tmp.path() / "next.dtb");
  fs::rename(tmp.path() / "next.dtb", dtb);
  EXPECT_EQ(LabelsOf(d).at("edgefd.io/board"), "acme-board-x");
  EXPECT_EQ(d.devicetree_reads(), 2u);

  // A blob broken meanwhile is the error Discover gives, and is not kept.
  WriteFile(tmp.path() / "broken.dtb", "not a devicetree");
  fs::rename(tmp.path() / "broken.dtb", dtb);
  auto broken = d.Run();
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("board.dtb"), std::string::npos);
}

// Rules reload: the Discoverer reads the rules files on every Run, parses them again only when
// they changed, and keeps the last rules that loaded when a new version does not.
const char kRenamedGpuRules[] = R"(rules:
  - name: tegra-gpu
    match:
      - compatible: ["nvidia,gm20b"]
)";

// The Jetson Nano fixture root with a rules file beside it.
struct RulesRoot {
  explicit RulesRoot(const std::string& rules) : rules_file(tmp.Write("rules.yaml", rules)) {
    fs::copy(testing::TestdataDir() / "roots/jetson-nano-blog", root, fs::copy_options::recursive);
  }
  TempDir tmp;
  const fs::path root = tmp.path() / "root";
  const fs::path rules_file;
  Discoverer d{DiscoveryOptions{root, {}, {}, {rules_file}, false}};
};

TEST(DiscovererRules, AChangedFileIsLoadedAndItsGenerationCounted) {
  RulesRoot r(kRenamedGpuRules);
  auto first = r.d.Run();
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->rules.generation, 1u);
  EXPECT_EQ(first->rules.hash.size(), 16u);
  EXPECT_EQ(RenderLabels(first->inventory).count("edgefd.io/accel.tegra-gpu"), 1u);

  WriteFile(r.rules_file,
            std::string(kRenamedGpuRules) + "  - name: jetson-gpu\n    enabled: false\n");
  auto second = r.d.Run();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->rules.generation, 2u);
  EXPECT_NE(second->rules.hash, first->rules.hash);
  EXPECT_TRUE(second->rules.error.empty());
  EXPECT_EQ(RenderLabels(second->inventory).count("edgefd.io/accel.jetson-gpu"), 0u);
  EXPECT_EQ(RenderLabels(first->inventory).count("edgefd.io/accel.jetson-gpu"), 1u);

  // The same contents again (a touch, a ConfigMap update of another key): no new generation.
  WriteFile(r.rules_file,
            std::string(kRenamedGpuRules) + "  - name: jetson-gpu\n    enabled: false\n");
  EXPECT_EQ(r.d.Run()->rules.generation, 2u);
}

TEST(DiscovererRules, ABrokenFileKeepsTheOldRulesAndSaysWhereItIsBroken) {
  RulesRoot r(kRenamedGpuRules);
  auto good = r.d.Run();
  ASSERT_TRUE(good.ok());
  const Labels before = RenderLabels(good->inventory);

  WriteFile(r.rules_file, "rules:\n  - name: tegra-gpu\n    matchs: {}\n");
  auto broken = r.d.Run();
  ASSERT_TRUE(broken.ok()) << "a broken reload must not stop discovery";
  EXPECT_EQ(RenderLabels(broken->inventory), before);
  EXPECT_EQ(broken->rules.generation, 1u);
  EXPECT_EQ(broken->rules.hash, good->rules.hash);
  EXPECT_EQ(broken->rules.rejected, 1u);
  // file:line: and the key.
  EXPECT_NE(broken->rules.error.find(r.rules_file.string() + ":3:"), std::string::npos)
      << broken->rules.error;
  EXPECT_NE(broken->rules.error.find("matchs"), std::string::npos) << broken->rules.error;
  // Seen again on the next hardware event: still one refused version.
  EXPECT_EQ(r.d.Run()->rules.rejected, 1u);

  // Fixed: loaded, the error gone.
  WriteFile(r.rules_file,
            std::string(kRenamedGpuRules) + "  - name: mali-gpu\n    enabled: false\n");
  auto fixed = r.d.Run();
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->rules.generation, 2u);
  EXPECT_TRUE(fixed->rules.error.empty());
}

TEST(DiscovererRules, ADeletedFileKeepsTheOldRulesAndSaysSo) {
  RulesRoot r(kRenamedGpuRules);
  auto good = r.d.Run();
  ASSERT_TRUE(good.ok());
  fs::remove(r.rules_file);
  auto gone = r.d.Run();
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(RenderLabels(gone->inventory), RenderLabels(good->inventory));
  EXPECT_EQ(gone->rules.rejected, 1u);
  EXPECT_NE(gone->rules.error.find(r.rules_file.string()), std::string::npos);
  // Back as it was: the rules in force are on disk again, nothing to reload.
  WriteFile(r.rules_file, kRenamedGpuRules);
  auto back = r.d.Run();
  EXPECT_EQ(back->rules.generation, 1u);
  EXPECT_TRUE(back->rules.error.empty());
}

TEST(DiscovererRules, ABrokenFileAtStartIsAnError) {
  RulesRoot r("rules: [\n");
  auto first = r.d.Run();
  ASSERT_FALSE(first.ok());
  EXPECT_NE(first.error().message.find("rules.yaml:"), std::string::npos);
}

}  // namespace
}  // namespace edgefd
