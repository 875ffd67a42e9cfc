// Versions: normalisation to semver, the rules' version sources, reading them below a root,
// and the labels they give.
#include "edgefd/discovery/versions.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/warning_log.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;

void Write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  testing::WriteFile(path, text);
}

TEST(NormalizeSemver, NormalisesWhatDriversPrint) {
  EXPECT_THAT(NormalizeSemver("2.1"), Optional(std::string("2.1.0")));
  EXPECT_THAT(NormalizeSemver("v2.1.0"), Optional(std::string("2.1.0")));
  EXPECT_THAT(NormalizeSemver("1"), Optional(std::string("1.0.0")));
  EXPECT_THAT(NormalizeSemver(" 2.3\n"), Optional(std::string("2.3.0")));
  EXPECT_THAT(NormalizeSemver("535.104.05"), Optional(std::string("535.104.5")));
  EXPECT_THAT(NormalizeSemver("3.2.6-k"), Optional(std::string("3.2.6-k")));
  EXPECT_THAT(NormalizeSemver("1.2-rc.1+git.abc"), Optional(std::string("1.2.0-rc.1+git.abc")));
}

TEST(NormalizeSemver, LeavesOutWhatIsNoVersion) {
  for (const char* raw :
       {"", "v", "unknown", "A1B2C3D4E5F6A7B8C9D0E1F", "1.0.2.0-k", "1..2", "1.2.3 beta",
        "1.2.3-01", "1.2.3-", "1.2.3+", "-1.2.3", "1234567890123456789.0.0", "1.2.3-a..b"}) {
    EXPECT_EQ(NormalizeSemver(raw), std::nullopt) << "'" << raw << "'";
  }
}

TEST(BcdToVersion, ReadsUsbBinaryCodedDecimal) {
  EXPECT_THAT(BcdToVersion("0100"), Optional(std::string("1.0.0")));
  EXPECT_THAT(BcdToVersion("0213"), Optional(std::string("2.1.3")));
  EXPECT_THAT(BcdToVersion("1234"), Optional(std::string("12.3.4")));
  EXPECT_EQ(BcdToVersion("00ab"), std::nullopt);
  EXPECT_EQ(BcdToVersion("100"), std::nullopt);
}

TEST(RuleVersionsParse, ReadsEachKindOfSource) {
  auto rules = ParseRules(R"(rules:
  - name: npu
    match: {compatible: "x,npu"}
    versions:
      driver: [{module: x_npu}, {bound-driver: true}]
      firmware: {usb-bcd: true}
      runtime:
        - file: /etc/x-release
          regex: 'release ([0-9]+)\.([0-9]+)'
)",
                          "rules.yaml");
  ASSERT_TRUE(rules) << rules.error().message;
  const RuleVersions& v = rules->at(0).versions;
  ASSERT_EQ(v.driver.size(), 2u);
  EXPECT_EQ(v.driver[0].module, "x_npu");
  EXPECT_TRUE(v.driver[1].bound_driver);
  ASSERT_EQ(v.firmware.size(), 1u);
  EXPECT_TRUE(v.firmware[0].usb_bcd);
  ASSERT_EQ(v.runtime.size(), 1u);
  EXPECT_EQ(v.runtime[0].file, "/etc/x-release");
  EXPECT_EQ(v.runtime[0].regex, "release ([0-9]+)\\.([0-9]+)");
}

TEST(RuleVersionsParse, RefusesBrokenSourcesNamingTheLine) {
  struct Case {
    const char* versions;
    const char* message;
  };
  for (const Case& c : {
           Case{"{driver: {modul: x}}",
                "rules.yaml:4: rule 'npu': 'versions' 'driver': unknown "
                "key 'modul' \u2014 did you mean 'module'?"},
           Case{"{drivers: {module: x}}", "did you mean 'driver'?"},
           Case{"{driver: {module: x, file: /a}}", "exactly one of"},
           Case{"{driver: {module: ../../etc}}", "is not a kernel module name"},
           Case{"{runtime: {file: etc/release}}", "must be an absolute path"},
           Case{"{runtime: {file: /etc/../../x}}", "must be an absolute path"},
           Case{"{runtime: {file: /etc/r, regex: '(unclosed'}}", "'regex': '(unclosed'"},
           Case{"{runtime: {module: x, regex: 'a'}}", "'regex' goes with 'file'"},
           Case{"{runtime: []}", "must be a source or a non-empty list"},
           Case{"[driver]", "must be a mapping"},
       }) {
    std::string yaml = std::string("rules:\n  - name: npu\n    match: {compatible: \"x,npu\"}\n") +
                       "    versions: " + c.versions + "\n";
    auto rules = ParseRules(yaml, "rules.yaml");
    ASSERT_FALSE(rules) << c.versions;
    EXPECT_THAT(rules.error().message, HasSubstr(c.message)) << c.versions;
  }
}

Device NpuDevice() {
  Device d;
  d.rule = "npu";
  d.id = "/npu@1";
  d.driver = "x-npu";
  d.healthy = true;
  return d;
}

std::vector<Rule> NpuRule(const std::string& versions) {
  auto rules = ParseRules(
      "rules:\n  - name: npu\n    match: {compatible: \"x,npu\"}\n    versions: " + versions + "\n",
      "rules.yaml");
  EXPECT_TRUE(rules) << rules.error().message;
  return rules ? *rules : std::vector<Rule>{};
}

TEST(ReadDeviceVersions, BoundDriverModuleByDefaultWithItsUnderscoredName) {
  testing::TempDir root;
  Write(root.path() / "sys/module/x_npu/version", "2.1\n");
  auto rules = ParseRules("rules:\n  - name: npu\n    match: {compatible: \"x,npu\"}\n", "r");
  ASSERT_TRUE(rules);
  std::vector<Device> devices = {NpuDevice()};
  std::vector<std::string> warnings;
  ReadDeviceVersions(*rules, root.path(), devices, &warnings);
  EXPECT_EQ(devices[0].driver_version, "2.1");
  EXPECT_EQ(devices[0].firmware_version, "");
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(ReadDeviceVersions, SrcversionWhenTheModuleHasNoVersion) {
  testing::TempDir root;
  Write(root.path() / "sys/module/x_npu/srcversion", "A1B2C3D4E5F6A7B8C9D0E1F\n");
  std::vector<Device> devices = {NpuDevice()};
  ReadDeviceVersions(NpuRule("{driver: {module: x_npu}}"), root.path(), devices, nullptr);
  // Kept for the label; NormalizeSemver leaves it out of the DRA attribute.
  EXPECT_EQ(devices[0].driver_version, "A1B2C3D4E5F6A7B8C9D0E1F");
}

// A device of a built-in rule, its versions read below a root holding `file` with `text`.
Device WithBuiltInRule(const std::string& rule, const std::string& file, const std::string& text,
                       std::vector<std::string>* warnings) {
  testing::TempDir root;
  Write(root.path() / file, text);
  auto rules = LoadRules({});
  EXPECT_TRUE(rules);
  Device device = NpuDevice();
  device.rule = rule;
  std::vector<Device> devices = {device};
  ReadDeviceVersions(rules ? *rules : std::vector<Rule>{}, root.path(), devices, warnings);
  return devices[0];
}

TEST(ReadDeviceVersions, JetsonReleaseFileThroughTheBuiltInRule) {
  std::vector<std::string> warnings;
  Device gpu = WithBuiltInRule("jetson-gpu", "etc/nv_tegra_release",
                               "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, "
                               "EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022\n",
                               &warnings);
  EXPECT_EQ(gpu.runtime_version, "32.7.1");
  EXPECT_THAT(warnings, IsEmpty());
}

TEST(ReadDeviceVersions, NvidiaProcVersionThroughTheBuiltInRule) {
  Device gpu =
      WithBuiltInRule("nvidia-gpu", "proc/driver/nvidia/version",
                      "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug "
                      "19 01:15:15 UTC 2023\nGCC version:  gcc version 12.2.0\n",
                      nullptr);
  EXPECT_EQ(gpu.driver_version, "535.104.05");
  EXPECT_THAT(NormalizeSemver(gpu.driver_version), Optional(std::string("535.104.5")));
}

TEST(ReadDeviceVersions, GarbageFilesAreNamedAndLeftOutNotGuessed) {
  testing::TempDir root;
  Write(root.path() / "etc/x-release", "no version in here\nnor here\n");
  Write(root.path() / "etc/binary", std::string("\x7f"
                                                "ELF\x01\x02\0\0",
                                                8));
  Write(root.path() / "sys/module/x_npu/version", std::string("\x01\x02\x03", 3));
  std::vector<Device> devices = {NpuDevice()};
  std::vector<std::string> warnings;
  ReadDeviceVersions(NpuRule("{driver: {module: x_npu}, runtime: [{file: /etc/x-release, regex: "
                             "'release ([0-9]+)'}, {file: /etc/binary}]}"),
                     root.path(), devices, &warnings);
  EXPECT_EQ(devices[0].driver_version, "");
  EXPECT_EQ(devices[0].runtime_version, "");
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_THAT(warnings[0],
              HasSubstr((root.path() / "sys/module/x_npu/version").string() + ": not a version"));
  EXPECT_THAT(warnings[1], HasSubstr((root.path() / "etc/x-release").string() +
                                     ": no line matches 'release ([0-9]+)'; left out"));
  EXPECT_THAT(warnings[2], HasSubstr((root.path() / "etc/binary").string() + ": first line"));
}

TEST(ReadDeviceVersions, AnOversizedFileIsRefusedUnread) {
  testing::TempDir root;
  Write(root.path() / "etc/x-release", std::string(kMaxVersionFileBytes + 1, '1'));
  std::vector<Device> devices = {NpuDevice()};
  std::vector<std::string> warnings;
  ReadDeviceVersions(NpuRule("{runtime: {file: /etc/x-release}}"), root.path(), devices, &warnings);
  EXPECT_EQ(devices[0].runtime_version, "");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("etc/x-release"));
}

TEST(ReadDeviceVersions, FirstSourceThatYieldsWins) {
  testing::TempDir root;
  Write(root.path() / "sys/module/second/version", "3.0");
  std::vector<Device> devices = {NpuDevice()};
  ReadDeviceVersions(NpuRule("{driver: [{module: first}, {module: second}]}"), root.path(), devices,
                     nullptr);
  EXPECT_EQ(devices[0].driver_version, "3.0");
}

TEST(VersionLabels, DriverAndRuntimeVersionsWhereTheRuleDevicesAgree) {
  Inventory inv;
  Device a = NpuDevice();
  a.driver_version = "2.1";
  a.runtime_version = "32.7.1";
  Device b = a;
  b.id = "/npu@2";
  inv.devices = {a, b};
  Labels labels;
  AddDeviceLabels(inv, labels);
  EXPECT_EQ(labels["edgefd.io/accel.npu.driver-version"], "2.1");
  EXPECT_EQ(labels["edgefd.io/accel.npu.runtime-version"], "32.7.1");

  inv.devices[1].driver_version = "2.2";  // two drivers: no one version is the node's
  labels.clear();
  AddDeviceLabels(inv, labels);
  EXPECT_EQ(labels.count("edgefd.io/accel.npu.driver-version"), 0u);
  EXPECT_EQ(labels["edgefd.io/accel.npu.runtime-version"], "32.7.1");
}

TEST(VersionLabels, LongRuleNamesStillGiveValidLabels) {
  Inventory inv;
  Device d = NpuDevice();
  d.rule = std::string(50, 'a');
  d.driver_version = "1.0 (built by someone@host)";
  inv.devices = {d};
  Labels labels;
  AddDeviceLabels(inv, labels);
  int versions = 0;
  for (const auto& [k, v] : labels) {
    EXPECT_TRUE(IsValidLabelKey(k)) << k;
    EXPECT_TRUE(IsValidLabelValue(v)) << k << "=" << v;
    if (k.find("driver-version") != std::string::npos) ++versions;
  }
  // The name is cut with a hash suffix, so "driver-version" itself may be cut: find the value.
  EXPECT_THAT(labels, Contains(::testing::Pair(::testing::_, "1.0-built-by-someone-host")));
  (void)versions;
}

TEST(SystemInfo, KernelAndOsFromTheRoot) {
  testing::TempDir root;
  Write(root.path() / "proc/sys/kernel/osrelease", "6.1.0-18-arm64\n");
  Write(root.path() / "etc/os-release",
        "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n");
  SystemInfo info = ReadSystemInfo(root.path(), /*live=*/false, nullptr);
  EXPECT_EQ(info.kernel_release, "6.1.0-18-arm64");
  EXPECT_EQ(info.os_id, "debian");
  EXPECT_EQ(info.os_version_id, "12");
  Inventory inv;
  inv.system = info;
  Labels labels = RenderLabels(inv);
  EXPECT_EQ(labels["edgefd.io/kernel.version"], "6.1.0-18-arm64");
  EXPECT_EQ(labels["edgefd.io/os.id"], "debian");
  EXPECT_EQ(labels["edgefd.io/os.version"], "12");
}

TEST(SystemInfo, UsrLibOsReleaseAndNothingFromThisMachineForAFixture) {
  testing::TempDir root;
  Write(root.path() / "usr/lib/os-release", "ID=ubuntu\nVERSION_ID='22.04'\n");
  SystemInfo info = ReadSystemInfo(root.path(), /*live=*/false, nullptr);
  EXPECT_EQ(info.kernel_release, "");  // not uname's: this root is not the running system
  EXPECT_EQ(info.os_id, "ubuntu");
  EXPECT_EQ(info.os_version_id, "22.04");
}

TEST(SystemInfo, GarbageOsReleaseIsNamed) {
  testing::TempDir root;
  Write(root.path() / "etc/os-release", std::string("\x01\x02garbage", 9));
  std::vector<std::string> warnings;
  SystemInfo info = ReadSystemInfo(root.path(), /*live=*/false, &warnings);
  EXPECT_EQ(info.os_id, "");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr((root.path() / "etc/os-release").string()));
}

TEST(SystemInfo, LiveRootFallsBackToTheRunningKernel) {
  testing::TempDir root;
  SystemInfo info = ReadSystemInfo(root.path(), /*live=*/true, nullptr);
  EXPECT_FALSE(info.kernel_release.empty());
}

// The Jetson Nano of the original labeller's blog post, in directory form, with L4T's release
// file: the board's GPU gets its runtime version, the node its OS.
TEST(DiscoverVersions, JetsonRootGivesTheRuntimeVersionLabel) {
  testing::TempDir root;
  fs::copy(testing::TestdataDir() / "roots/jetson-nano-blog", root.path(),
           fs::copy_options::recursive);
  Write(root.path() / "etc/nv_tegra_release", "# R32 (release), REVISION: 7.1, GCID: 1\n");
  Write(root.path() / "etc/os-release", "ID=ubuntu\nVERSION_ID=\"18.04\"\n");
  DiscoveryOptions options;
  options.root = root.path();
  auto report = Discover(options);
  ASSERT_TRUE(report) << report.error().message;
  Labels labels = RenderLabels(report->inventory);
  EXPECT_EQ(labels["edgefd.io/accel.jetson-gpu.runtime-version"], "32.7.1");
  EXPECT_EQ(labels["edgefd.io/os.id"], "ubuntu");
  EXPECT_EQ(labels["edgefd.io/os.version"], "18.04");
  EXPECT_EQ(labels.count("edgefd.io/kernel.version"), 0u);  // no proc/ in the fixture

  // The same board as a blob (--dtb): some other board, so none of this machine's files.
  options.dtb = testing::TestdataBin() / "jetson-nano-blog.dtb";
  report = Discover(options);
  ASSERT_TRUE(report) << report.error().message;
  labels = RenderLabels(report->inventory);
  EXPECT_EQ(labels["edgefd.io/accel.jetson-gpu"], "true");
  EXPECT_EQ(labels.count("edgefd.io/accel.jetson-gpu.runtime-version"), 0u);
  EXPECT_EQ(labels.count("edgefd.io/os.id"), 0u);
}

// The agent and the device plugin discover at every hardware event: a garbage version file
// is said once, not every time.
TEST(WarningLog, SaysEachWarningOnce) {
  WarningLog log;
  log.Log({"a: not a version", "b: no line matches"});
  log.Log({"a: not a version"});
  log.Log({"a: not a version", "c: new"});
  EXPECT_EQ(log.logged(), 3u);
}

}  // namespace
}  // namespace edgefd
