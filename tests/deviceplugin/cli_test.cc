// edgefd-deviceplugin as a user runs it: the real binary as a subprocess.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/dra_checkpoint.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/http.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::deviceplugin {
namespace {

namespace fs = std::filesystem;
using testing::FakeKubelet;
using ::testing::HasSubstr;
using testing::TempDir;

using testing::Child;

const std::string kBin = testing::DevicePluginBin();
const std::string kInventory = (testing::TestdataDir() / "deviceplugin/rk3399-ncs.yaml").string();

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunBinary(const std::string& args) {
  testing::CommandResult r = testing::RunCommand(testing::CommandLine(kBin, args));
  return {r.exit_code, r.out + r.err};
}

TEST(DevicePluginCli, HelpDescribesTheFlags) {
  RunResult r = RunBinary("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag :
       {"--kubelet-dir", "--root", "--metrics-addr", "--rescan", "/var/lib/kubelet/device-plugins",
        "--dra-checkpoint", "/var/lib/kubelet/plugins/edgefd.io/checkpoint.json"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
}

TEST(DevicePluginCli, BadUsageExitsTwoNamingTheInput) {
  RunResult r = RunBinary("--frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--frobnicate"));
  r = RunBinary("--rescan soon");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("soon"));
  r = RunBinary("--inventory /nonexistent/inv.yaml --list");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/inv.yaml"));
}

TEST(DevicePluginCli, MissingKubeletDirIsARuntimeFailureNamingIt) {
  RunResult r = RunBinary("--inventory " + kInventory +
                          " --kubelet-dir /nonexistent/plugins --metrics-addr none");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/plugins"));
}

TEST(DevicePluginCli, ListPrintsResourcesAndEnvironment) {
  RunResult r = RunBinary("--inventory " + kInventory + " --list");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/little-cpu (EDGEFD_LITTLE_CPUS)"));
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/movidius-ncs (EDGEFD_MOVIDIUS_NCS_DEVICES, "
                                  "EDGEFD_MOVIDIUS_NCS_DEVNODES)"));
  EXPECT_THAT(r.output, HasSubstr("1-1.2 Healthy numa=0"));
}

TEST(DevicePluginCli, ListTakesTheOneOutputFlag) {
  auto json = ::edgefd::testing::RunCommand(::edgefd::testing::CommandLine(
      kBin, "--inventory " + kInventory + " --list --output json --log-level error"));
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto doc = ParseJson(json.out, "--list --output json");
  ASSERT_TRUE(doc.ok()) << doc.error().message << json.out;
  bool found = false;
  for (const Json& r : (*doc)["resources"]) {
    if (r["resource"] != "edgefd.io/movidius-ncs") continue;
    found = true;
    EXPECT_EQ(r["devicesEnv"], "EDGEFD_MOVIDIUS_NCS_DEVICES");
    EXPECT_EQ(r["devnodesEnv"], "EDGEFD_MOVIDIUS_NCS_DEVNODES");
    EXPECT_EQ(r["devices"][0]["id"], "1-1.2");
    EXPECT_EQ(r["devices"][0]["healthy"], true);
    EXPECT_EQ(r["devices"][0]["numaNode"], 0);
  }
  EXPECT_TRUE(found) << json.out;
  auto yaml = ::edgefd::testing::RunCommand(::edgefd::testing::CommandLine(
      kBin, "--inventory " + kInventory + " --list --output yaml --log-level error"));
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, HasSubstr("- resource: edgefd.io/movidius-ncs\n"));
  // text stays what it was.
  RunResult text = RunBinary("--inventory " + kInventory + " --list --output text");
  EXPECT_THAT(text.output, HasSubstr("1-1.2 Healthy numa=0"));
}

// The DRA checkpoint a test's plugin follows: in its own directory, never the host's.
std::string CheckpointIn(const fs::path& dir) { return (dir / "dra/checkpoint.json").string(); }

// Starts the real binary with `args` against the kubelet directory `dir`.
std::unique_ptr<Child> Start(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), {kBin, "--kubelet-dir", dir.string(), "--metrics-addr", "none",
                             "--rescan", "0", "--dra-checkpoint", CheckpointIn(dir)});
  return std::make_unique<Child>(args);
}

TEST(DevicePluginCli, RealDiscoveryOfAnRk3588ServesItsCoreClasses) {
  // RK3588: four A55 (cluster 0), big A76 pairs in clusters 1 (cpu4-5) and 2 (cpu6-7).
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  auto plugin = Start(dir.path(), {"--root", (testing::TestdataDir() / "cpu/rk3588").string()});
  ASSERT_TRUE(plugin->started());
  for (const char* r : {"edgefd.io/big-cpu", "edgefd.io/little-cpu"}) {
    ASSERT_TRUE(kubelet.WaitFor(r, [](const auto& ep) { return !ep.lists.empty(); })) << r;
  }
  EXPECT_EQ(kubelet.Get("edgefd.io/big-cpu")->lists.back().devices_size(), 4);
  EXPECT_EQ(kubelet.Get("edgefd.io/little-cpu")->lists.back().devices_size(), 4);
  auto stub = kubelet.Dial("edgefd.io/big-cpu");
  // The kubelet has cpu5, cpu6, cpu7 free and wants two: the plugin prefers one cluster.
  v1beta1::PreferredAllocationRequest preq;
  auto* c = preq.add_container_requests();
  for (const char* id : {"cpu5", "cpu6", "cpu7"}) c->add_available_deviceids(id);
  c->set_allocation_size(2);
  v1beta1::PreferredAllocationResponse presp;
  grpc::ClientContext pctx;
  ASSERT_TRUE(stub->GetPreferredAllocation(&pctx, preq, &presp).ok());
  ASSERT_EQ(presp.container_responses(0).deviceids_size(), 2);
  EXPECT_EQ(presp.container_responses(0).deviceids(0), "cpu6");
  EXPECT_EQ(presp.container_responses(0).deviceids(1), "cpu7");
  v1beta1::AllocateRequest req;
  auto* container = req.add_container_requests();
  for (const auto& id : presp.container_responses(0).deviceids()) container->add_devices_ids(id);
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.container_responses(0).envs().at("EDGEFD_BIG_CPUS"), "6,7");
  EXPECT_EQ(plugin->Terminate(), 0) << plugin->err();
}

TEST(DevicePluginCli, ServesMetricsAndProbesOverHttp) {
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  Child plugin({kBin, "--kubelet-dir", dir.path().string(), "--inventory", kInventory,
                "--metrics-addr", "127.0.0.1:0", "--dra-checkpoint", CheckpointIn(dir.path())});
  // Its log (stderr) says which port it bound.
  ASSERT_TRUE(plugin.WaitFor([](const std::string&, const std::string& err) {
    size_t at = err.find("(port ");
    return at != std::string::npos && err.find(')', at) != std::string::npos;
  })) << plugin.err();
  const auto port =
      static_cast<uint16_t>(std::stoi(plugin.err().substr(plugin.err().find("(port ") + 6)));
  ASSERT_TRUE(
      kubelet.WaitFor("edgefd.io/little-cpu", [](const auto& ep) { return !ep.lists.empty(); }));
  std::string metrics = testing::HttpGet(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_deviceplugin_devices{resource=\"edgefd.io/little-cpu\","
                                 "health=\"Healthy\"} 4"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_deviceplugin_registrations_total{resource=\"edgefd.io/"
                                 "movidius-ncs\",result=\"ok\"}"));
  EXPECT_THAT(testing::HttpGet(port, "/healthz"), HasSubstr("HTTP/1.1 200 OK"));
  std::string ready = testing::HttpGet(port, "/readyz");
  EXPECT_TRUE(ready.find("HTTP/1.1 200") == 0 || ready.find("HTTP/1.1 503") == 0) << ready;
  EXPECT_THAT(testing::HttpGet(port, "/nope"), HasSubstr("HTTP/1.1 404"));
  EXPECT_EQ(plugin.Terminate(), 0) << plugin.err();
}

TEST(DevicePluginCli, SigtermStopsCleanlyAndRemovesItsSockets) {
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  auto plugin = Start(dir.path(), {"--inventory", kInventory});
  ASSERT_TRUE(plugin->started());
  for (const char* r : {"edgefd.io/big-cpu", "edgefd.io/little-cpu", "edgefd.io/movidius-ncs"}) {
    ASSERT_TRUE(kubelet.WaitFor(r, [](const auto& ep) { return !ep.lists.empty(); })) << r;
  }
  ASSERT_TRUE(fs::exists(dir.path() / "edgefd-little-cpu.sock"));
  EXPECT_EQ(plugin->Terminate(), 0) << plugin->err();
  for (const char* sock :
       {"edgefd-big-cpu.sock", "edgefd-little-cpu.sock", "edgefd-movidius-ncs.sock"}) {
    EXPECT_FALSE(fs::exists(dir.path() / sock)) << sock;
  }
  EXPECT_TRUE(
      kubelet.WaitFor("edgefd.io/little-cpu", [](const auto& ep) { return !ep.stream_open; }));
  EXPECT_TRUE(fs::exists(dir.path() / "kubelet.sock"));  // never touches the kubelet's
}

TEST(DevicePluginCli, WithCdiAllocateNamesCdiDevicesAndTheSpecIsWritten) {
  TempDir dir;
  fs::create_directories(dir.path() / "cdi");
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  auto plugin = Start(dir.path(), {"--inventory", kInventory, "--cdi", "--cdi-dir", dir / "cdi"});
  ASSERT_TRUE(plugin->started());
  ASSERT_TRUE(
      kubelet.WaitFor("edgefd.io/movidius-ncs", [](const auto& ep) { return !ep.lists.empty(); }));
  EXPECT_TRUE(fs::exists(dir.path() / "cdi" / "edgefd.io-device.json"));
  auto stub = kubelet.Dial("edgefd.io/movidius-ncs");
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("1-1.2");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  const auto& c = resp.container_responses(0);
  ASSERT_EQ(c.cdi_devices_size(), 1);
  EXPECT_EQ(c.cdi_devices(0).name(), "edgefd.io/device=movidius-ncs-1-1-2");
  EXPECT_EQ(c.envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.2");
  EXPECT_EQ(c.devices_size(), 1);
  // CDI or not, the device plugin never loads the API client's TLS and HTTP libraries (they
  // would double its memory): those live in edgefd-deviceplugin-dra.
  std::string mapped = testing::ReadFile("/proc/" + std::to_string(plugin->pid()) + "/maps");
  ASSERT_THAT(mapped, HasSubstr("libgrpc"));
  for (const char* lib : {"libcrypto", "libssl"}) {
    EXPECT_THAT(mapped, ::testing::Not(HasSubstr(lib)));
  }
  EXPECT_EQ(plugin->Terminate(), 0) << plugin->err();
}

TEST(DevicePluginCli, ModeHandsOverOrRefuses) {
  RunResult r = RunBinary("--mode gpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("gpu"));
  // dra runs edgefd-deviceplugin-dra: its own flags and usage errors.
  r = RunBinary("--mode dra --device-taints maybe");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--device-taints: 'maybe'"));
  // Without it, a DRA-only flag is unknown.
  r = RunBinary("--device-taints on");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--device-taints"));
  r = RunBinary("--mode=both --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("--kubelet-registry-dir"));
  r = RunBinary("--mode device-plugin --inventory " + kInventory + " --list");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/little-cpu"));
}

TEST(LinkedLibraries, TheDevicePluginLinksNoHttpOrTlsLibrary) {
  // The Kubernetes API client (OpenSSL) is the DRA program's alone: the plain
  // device plugin, resident on every node, stays small.
  const std::string plugin = testing::NeededLibraries(kBin);
  const std::string dra =
      testing::NeededLibraries((fs::path(kBin).parent_path() / "edgefd-deviceplugin-dra").string());
  if (plugin.empty()) GTEST_SKIP() << "readelf is not available";
  EXPECT_THAT(plugin, HasSubstr("libgrpc++_unsecure"));
  for (const char* lib : {"libssl", "libcrypto"}) {
    EXPECT_THAT(plugin, ::testing::Not(HasSubstr(lib))) << plugin;
    EXPECT_THAT(dra, HasSubstr(lib)) << "the check could not fail: " << dra;
  }
}

// --mode device-plugin beside the DRA driver's DaemonSet: the checkpoint it mounts read-only.
TEST(DevicePluginCli, WithdrawsWhatTheDraCheckpointSaysPreparedClaimsHold) {
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  DraCheckpoint checkpoint(CheckpointIn(dir.path()));
  fs::create_directories(checkpoint.path().parent_path());
  ASSERT_TRUE(checkpoint.Save(
      {{"uid-1", PreparedClaim{"uid-1", "default", "one-little", {{"r", "n", "cpu1", {}}}, {}}}}));
  auto plugin = Start(dir.path(), {"--inventory", kInventory});
  ASSERT_TRUE(plugin->started());
  EXPECT_TRUE(kubelet.WaitFor("edgefd.io/little-cpu",
                              FakeKubelet::Lists({{"cpu1", "Unhealthy"}, {"cpu0", "Healthy"}})));
  ASSERT_TRUE(checkpoint.Save({}));
  EXPECT_TRUE(kubelet.WaitFor("edgefd.io/little-cpu", FakeKubelet::Lists({{"cpu1", "Healthy"}})));
  EXPECT_EQ(plugin->Terminate(), 0) << plugin->err();
}

TEST(DevicePluginCli, StopsWithinASecondOfSigtermAsPid1) {
  if (!testing::CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1) for a PID namespace";
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  Child plugin(testing::AsPid1({kBin, "--kubelet-dir", dir.path().string(), "--metrics-addr",
                                "none", "--rescan", "0", "--inventory", kInventory,
                                "--dra-checkpoint", CheckpointIn(dir.path())}));
  ASSERT_TRUE(
      kubelet.WaitFor("edgefd.io/little-cpu", [](const auto& ep) { return !ep.lists.empty(); }));
  std::chrono::milliseconds took{};
  EXPECT_EQ(plugin.StopWithin(SIGTERM, testing::kStopDeadline, &took), 0) << plugin.err();
  ::testing::Test::RecordProperty("stop_ms", static_cast<int>(took.count()));
  EXPECT_FALSE(fs::exists(dir.path() / "edgefd-little-cpu.sock"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
