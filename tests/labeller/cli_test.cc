#include "edgefd/labeller/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "edgefd/common/json.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;
using testing::LabellerBin;
using testing::RunCommand;
using ::testing::StartsWith;
using testing::TestdataBin;
using testing::TestdataDir;

TEST(LabellerCli, HelpAndVersion) {
  auto help = RunCommand({LabellerBin(), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, StartsWith("Usage: edgefd-labeller"));
  for (const char* option : {"--dry-run", "--root", "--dtb", "--node", "--output"}) {
    EXPECT_THAT(help.out, HasSubstr(option));
  }
  auto version = RunCommand({LabellerBin(), "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_THAT(version.out, StartsWith("edgefd-labeller "));
}

TEST(LabellerCli, TextOutputIsSortedNameEqualsValueLines) {
  auto r = RunCommand(
      {LabellerBin(), "--dry-run", "--dtb", (TestdataBin() / "jetson-nano-blog.dtb").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("beta.devicetree.org/nvidia-jetson-nano=1\n"));
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/board=nvidia-jetson-nano\n"));
  std::vector<std::string> names;
  for (size_t start = 0, nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = r.out.substr(start, nl - start);
    ASSERT_NE(line.find('='), std::string::npos) << line;
    names.push_back(line.substr(0, line.find('=')));
  }
  EXPECT_GT(names.size(), 5u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(r.err, "");
}

TEST(LabellerCli, JsonOutputHoldsTheSameLabels) {
  auto r = RunCommand({LabellerBin(), "--dry-run", "--output", "json", "--dtb",
                       (TestdataBin() / "jetson-nano-blog.dtb").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto json = ParseJson(r.out, "stdout");
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_EQ((*json)["labels"]["beta.devicetree.org/nvidia-gm20b"], "1");
  EXPECT_EQ((*json)["labels"]["edgefd.io/soc"], "nvidia-tegra210");
  // The same labels as the text output.
  auto text = RunCommand(
      {LabellerBin(), "--dry-run", "--dtb", (TestdataBin() / "jetson-nano-blog.dtb").string()});
  std::string from_json;
  for (const auto& [name, value] : (*json)["labels"].items()) {
    from_json += name + "=" + value.get<std::string>() + "\n";
  }
  EXPECT_EQ(from_json, text.out);
}

TEST(LabellerCli, RootWithoutDevicetreeSaysSoAndStillSucceeds) {
  testing::TempDir empty_root;
  auto r = RunCommand({LabellerBin(), "--dry-run", "--root", empty_root.path().string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no devicetree found"));
  EXPECT_EQ(r.out.find("beta.devicetree.org/"), std::string::npos);
}

TEST(LabellerCli, YamlOutputHoldsTheSameDocumentAsJson) {
  std::string dtb = (TestdataBin() / "jetson-nano-blog.dtb").string();
  auto yaml = RunCommand({LabellerBin(), "--dry-run", "--output", "yaml", "--dtb", dtb});
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, StartsWith("labels:\n"));
  EXPECT_THAT(yaml.out, HasSubstr("\n  beta.devicetree.org/nvidia-gm20b: \"1\"\n"));
  EXPECT_THAT(yaml.out, HasSubstr("  edgefd.io/soc: nvidia-tegra210\n"));
  // Only a dry run prints.
  auto refused = RunCommand({LabellerBin(), "--output", "yaml", "--dtb", dtb});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err, HasSubstr("--output yaml prints and needs --dry-run"));
}

TEST(LabellerCli, AMissingRootIsAnErrorNamingIt) {
  auto r = RunCommand({LabellerBin(), "--dry-run", "--root", "/nonexistent"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("/nonexistent: no such directory"));
  EXPECT_EQ(r.out, "");
  testing::TempDir tmp;
  auto file = tmp.Write("a-file", "x");
  r = RunCommand({LabellerBin(), "--dry-run", "--root", file.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(file.string() + ": not a directory"));
}

TEST(LabellerCli, ARuleWhoseDtNodeIsNotScannedSaysSo) {
  testing::TempDir tmp;
  auto rules = tmp.Write("rules.yaml",
                         "rules:\n  - name: vpu\n    match: {compatible: \"x,vpu\", dt-node: "
                         "vpu}\n");
  std::string root = (TestdataDir() / "roots/jetson-nano-blog").string();
  auto r = RunCommand({LabellerBin(), "--dry-run", "--root", root, "--config", rules.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr(rules.string() + ":2: rule 'vpu': dt-node 'vpu' is not scanned"));
  EXPECT_THAT(r.err, HasSubstr("add --node vpu"));
  r = RunCommand(
      {LabellerBin(), "--dry-run", "--root", root, "--config", rules.string(), "--node", "vpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("is not scanned"), std::string::npos) << r.err;
}

TEST(LabellerCli, ExplainShowsWhichRuleMatchedAndWhyAnotherDidNot) {
  // A Vivante GC under a `gpu` node (i.MX 8M): vivante-gpu matches it, vivante-npu does not
  // because it wants an `npu` node.
  testing::TempDir root;
  std::string base = root / "sys/firmware/devicetree/base";
  std::filesystem::create_directories(base + "/gpu@38000000");
  testing::WriteFile(base + "/compatible", std::string("google,imx8mq-phanbell\0fsl,imx8mq\0", 34));
  testing::WriteFile(base + "/gpu@38000000/compatible", std::string("vivante,gc\0", 11));
  auto r = RunCommand({LabellerBin(), "--dry-run", "--explain", "--root", root.path().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("rule vivante-gpu (built-in)\n  match[0]: matched /gpu@38000000\n"));
  EXPECT_THAT(r.out, HasSubstr("rule vivante-npu (built-in)\n  match[0]: no device; nearest "
                               "/gpu@38000000: dt-node is gpu, wants npu\n"));
  EXPECT_THAT(r.out, HasSubstr("rule movidius-ncs (built-in)\n  match[0]: no device; no udev "
                               "device was enumerated (see --udev)\n"));
  EXPECT_EQ(r.out.find("edgefd.io/"), std::string::npos);  // an explanation, not labels
}

TEST(LabellerCli, LiveTreeUnderRootIsRead) {
  auto r = RunCommand(
      {LabellerBin(), "--dry-run", "--root", (TestdataDir() / "roots/jetson-nano-blog").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("beta.devicetree.org/nvidia-tegra210-gm20b=1\n"));
  EXPECT_EQ(r.err.find("no devicetree"), std::string::npos);
}

}  // namespace
}  // namespace edgefd

namespace edgefd {
namespace {

TEST(AgentOptions, WhatTheCommandLineHandsTheAgentArrivesUnchanged) {
  AgentCliOptions o;
  o.discovery.root = "/host";
  o.discovery.dtb = "/boot/board.dtb";
  o.discovery.extra_node_names = {"vpu", "isp"};
  o.discovery.rule_files = {"/etc/edgefd/site.yaml", "a b.yaml"};
  o.discovery.udev = false;
  o.once = true;
  o.kubeconfig = "/root/.kube/config";
  o.node_name = "rock-1";
  o.resync = std::chrono::seconds(17);
  o.insecure_skip_tls_verify = true;
  o.nfd = true;
  o.nfd_file = "/tmp/features.d/edgefd";
  o.nodefeature = true;
  o.metrics_addr = "[::1]:9402";
  o.rescan = std::chrono::milliseconds(50);
  o.log_level = "debug";
  o.calibration = "/etc/edgefd/calibration.json";
  for (const AgentCliOptions& options : {AgentCliOptions{}, o}) {
    auto json = AgentOptionsToJson(options);
    ASSERT_TRUE(json.ok()) << json.error().message;
    auto back = AgentOptionsFromJson(*json);
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(*back == options) << *json;
  }
}

TEST(LabellerCli, ACalibrationIsPublishedAsGflopsPerCoreClass) {
  testing::TempDir dir;
  dir.Write("cal.json", R"({"kind": "edgefd-pipeline calibration", "model": "yolo-tiny",
    "classes": [{"class": "big", "cpus": [4, 5], "threads": [
        {"threads": 1, "gflops": 20.04, "layer_ms": [1]},
        {"threads": 2, "gflops": 38.96, "layer_ms": [0.5]}]},
      {"class": "little", "threads": [{"threads": 1, "gflops": 4.5, "layer_ms": [4]}]}]})");
  auto r = RunCommand({LabellerBin(), "--dry-run", "--no-udev", "--root",
                       (TestdataDir() / "cpu/rk3399").string(), "--calibration", dir / "cal.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.big.gflops=39.0\n"));  // all its cores
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.little.gflops=4.5\n"));
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.gflops-model=yolo-tiny\n"));

  dir.Write("bad.json", R"({"labels": {}})");
  r = RunCommand({LabellerBin(), "--dry-run", "--no-udev", "--calibration", dir / "bad.json"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(dir / "bad.json"));
  EXPECT_THAT(r.err, HasSubstr("not a calibration"));
}

TEST(AgentOptions, APathThatIsNotUtf8IsRefusedRatherThanChanged) {
  AgentCliOptions o;
  o.discovery.root = "/host/\xff";
  EXPECT_FALSE(AgentOptionsToJson(o).ok());
}

TEST(AgentOptions, TheAgentRunAlonePointsAtTheLabeller) {
  auto r = testing::RunCommand(
      {(std::filesystem::path(testing::LabellerBin()).parent_path() / "edgefd-labeller-agent")
           .string(),
       "--once"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("run edgefd-labeller instead"));
}

TEST(AgentOptions, TheAgentAnswersVersionAndHelpLikeEveryBinary) {
  const std::string agent =
      (std::filesystem::path(testing::LabellerBin()).parent_path() / "edgefd-labeller-agent")
          .string();
  auto r = testing::RunCommand({agent, "--version"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("edgefd-labeller-agent 0."));
  r = testing::RunCommand({agent, "--help"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("edgefd-labeller --help"));
}

}  // namespace
}  // namespace edgefd

namespace edgefd {
namespace {

// The dry run never loads the agent's HTTP/TLS libraries (its memory, dryrun_rss).
TEST(LinkedLibraries, TheDryRunLinksNoHttpOrTlsLibrary) {
  const std::string needed = testing::NeededLibraries(testing::LabellerBin());
  if (needed.empty()) GTEST_SKIP() << "readelf is not available";
  EXPECT_THAT(needed, HasSubstr("libudev"));  // what it does link, so the check can fail
  for (const char* lib : {"libcpprest", "libssl", "libcrypto", "libgrpc"}) {
    EXPECT_THAT(needed, ::testing::Not(HasSubstr(lib))) << needed;
  }
}

TEST(LabellerCli, DryRunWatchStopsWithinASecondOfSigtermOrSigintAlsoAsPid1) {
  const std::vector<std::string> watch = {LabellerBin(),
                                          "--dry-run",
                                          "--watch",
                                          "--rescan",
                                          "1",
                                          "--root",
                                          (TestdataDir() / "roots/jetson-nano-blog").string()};
  for (bool pid1 : {false, true}) {
    if (pid1 && !testing::CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1)";
    for (int signal : {SIGTERM, SIGINT}) {
      testing::Child child(pid1 ? testing::AsPid1(watch) : watch);
      ASSERT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
        return err.find("watching for hardware changes") != std::string::npos;
      })) << child.err();
      std::chrono::milliseconds took{};
      EXPECT_EQ(child.StopWithin(signal, testing::kStopDeadline, &took), 0)
          << "pid1=" << pid1 << " signal=" << signal << "\n"
          << child.err();
      EXPECT_THAT(child.out(), HasSubstr("edgefd.io/board=nvidia-jetson-nano"));
    }
  }
}

}  // namespace
}  // namespace edgefd
