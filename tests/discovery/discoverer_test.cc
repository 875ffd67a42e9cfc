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

}  // namespace
}  // namespace edgefd
