// edgefd-deviceplugin --mode dra|both as a user runs it: the real binaries as a subprocess,
// against the API server stand-in over TLS (kubeconfig) and the kubelet stand-ins over gRPC.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "dra_test_support.h"
#include "edgefd/testing/fake_dra_kubelet.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/fake_pod_resources.h"
#include "edgefd/testing/http.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/timing.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using ::edgefd::testing::Child;
using ::edgefd::testing::ReadFile;
using ::edgefd::testing::TestPki;
using ::edgefd::testing::WriteFile;
using testing::FakeApiServer;
using testing::FakeDraKubelet;
using ::testing::HasSubstr;
using testing::kNode;
using testing::TempDir;

const std::string kBin = ::edgefd::testing::DevicePluginBin();
const std::string kInventory = (::edgefd::testing::TestdataDir() / "dra/rock5b.yaml").string();

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

// Runs the binary to completion without NODE_NAME in its environment.
RunResult RunBinary(const std::string& args) {
  auto argv = ::edgefd::testing::CommandLine(kBin, args);
  argv.insert(argv.begin(), {"/usr/bin/env", "-u", "NODE_NAME"});
  ::edgefd::testing::CommandResult r = ::edgefd::testing::RunCommand(argv);
  return {r.exit_code, r.out + r.err};
}

// A TLS API server with a token, a kubeconfig for it, and the kubelet's directories.
class DraCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (pki_ == nullptr) {
      auto pki = TestPki::Create(::edgefd::testing::MakeTempDir("edgefd-dra-pki"));
      ASSERT_TRUE(pki.ok()) << pki.error().message;
      pki_ = new TestPki(*pki);
    }
  }
  void SetUp() override {
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServer::Options{pki_->server_cert, pki_->server_key, pki_->ca_cert});
    server_->SetToken("dra-token");
    server_->AddNode(kNode, {});
    WriteFile(dir_.path() / "kubeconfig", server_->Kubeconfig(pki_->ca_cert, "dra-token"));
    for (const char* d : {"registry", "plugins", "cdi", "device-plugins"}) {
      fs::create_directories(dir_.path() / d);
    }
    ASSERT_TRUE(pod_resources_.Start());
  }
  void Start(const std::string& mode, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {kBin,
                                     "--mode",
                                     mode,
                                     "--inventory",
                                     kInventory,
                                     "--node-name",
                                     kNode,
                                     "--kubeconfig",
                                     dir_ / "kubeconfig",
                                     "--kubelet-registry-dir",
                                     dir_ / "registry",
                                     "--kubelet-plugins-dir",
                                     dir_ / "plugins",
                                     "--kubelet-dir",
                                     dir_ / "device-plugins",
                                     "--cdi-dir",
                                     dir_ / "cdi",
                                     "--pod-resources-socket",
                                     pod_resources_.socket(),
                                     "--metrics-addr",
                                     "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    plugin_ = std::make_unique<Child>(args);
    ASSERT_TRUE(plugin_->started());
  }
  // The port of --metrics-addr 127.0.0.1:0, which its log (stderr) names; 0 when it does not.
  uint16_t MetricsPort() {
    if (!plugin_->WaitFor([](const std::string&, const std::string& err) {
          size_t at = err.find("(port ");
          return at != std::string::npos && err.find(')', at) != std::string::npos;
        })) {
      return 0;
    }
    const std::string err = plugin_->err();
    return static_cast<uint16_t>(std::stoi(err.substr(err.find("(port ") + 6)));
  }
  // SIGTERM; the exit status, or -1 when it took longer than `limit`.
  int Stop(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    return plugin_->StopWithin(SIGTERM, limit);
  }
  bool PoolHas(const std::string& device) {
    for (const Json& d : server_->resources().PoolDevices(kNode)) {
      if (d.value("name", "") == device) return true;
    }
    return false;
  }

  static inline TestPki* pki_ = nullptr;
  TempDir dir_;
  ::edgefd::testing::FakePodResources pod_resources_{dir_.path() / "pod-resources" /
                                                     "kubelet.sock"};
  std::unique_ptr<FakeApiServer> server_;
  std::unique_ptr<Child> plugin_;
};

// A calibration of rock5b's cores: big measured with its 4 cores, little with 2 threads.
std::string Rock5bCalibration(double big_gflops) {
  return R"({"kind": "edgefd-pipeline calibration", "model": "yolo-tiny", "classes": [
      {"class": "big", "threads": [{"threads": 1, "gflops": 30}, {"threads": 4, "gflops": )" +
         std::to_string(big_gflops) + R"(}]},
      {"class": "little", "threads": [{"threads": 2, "gflops": 5}]}]})";
}

TEST_F(DraCliTest, ACalibrationIsFollowedAsItChangesAndABrokenOneLeavesTheSpeedOut) {
  dir_.Write("cal.json", Rock5bCalibration(100));
  Start("dra", {"--calibration", dir_ / "cal.json"});
  auto mflops = [&](const std::string& device) -> int64_t {
    for (const Json& d : server_->resources().PoolDevices(kNode)) {
      if (d.value("name", "") == device) {
        return IntegerAt(d, "/attributes/mflops/int").value_or(-1);
      }
    }
    return -2;
  };
  ASSERT_TRUE(server_->WaitFor([&] { return mflops("cpu7") == 25000; })) << plugin_->err();
  EXPECT_EQ(mflops("cpu0"), 2500);
  EXPECT_EQ(mflops("edgetpu-2-1"), -1);
  // A broken file (as a half-written or wrong one): the cores stay, without the speed, and the
  // error names the file. The resync is 30 s: the file's change is what makes it publish.
  dir_.Write("cal.json", R"({"kind": "edgefd-pipeline calibration", "model": "yolo-tiny",
      "classes": [{"class": "big", "threads": [{"threads": 4, "gflops": -1}]}]})");
  ASSERT_TRUE(server_->WaitFor([&] { return mflops("cpu7") == -1; })) << plugin_->err();
  EXPECT_EQ(mflops("cpu0"), -1);
  EXPECT_TRUE(plugin_->WaitFor([&](const std::string&, const std::string& err) {
    return err.find((dir_ / "cal.json") + ": class big, run 0") != std::string::npos;
  })) << plugin_->err();
  // A new calibration renamed over it, as `calibrate --out` writes one.
  dir_.Write("next.json", Rock5bCalibration(120));
  fs::rename(dir_.path() / "next.json", dir_.path() / "cal.json");
  ASSERT_TRUE(server_->WaitFor([&] { return mflops("cpu7") == 30000; })) << plugin_->err();
  EXPECT_EQ(Stop(), 0);
}

TEST_F(DraCliTest, AMissingCalibrationPublishesTheCoresWithoutTheSpeed) {
  Start("dra", {"--calibration", dir_ / "none.json"});
  ASSERT_TRUE(server_->WaitFor([&] { return PoolHas("cpu7"); }));
  for (const Json& d : server_->resources().PoolDevices(kNode)) {
    EXPECT_EQ(ValueAt(d, "/attributes/mflops"), nullptr) << d.dump();
  }
  EXPECT_TRUE(plugin_->WaitFor([&](const std::string&, const std::string& err) {
    return err.find(dir_ / "none.json") != std::string::npos;
  })) << plugin_->err();
  EXPECT_EQ(Stop(), 0);
}

TEST_F(DraCliTest, PublishesRegistersPreparesAndStopsWithinASecond) {
  FakeDraKubelet kubelet(dir_.path() / "registry");
  ASSERT_TRUE(kubelet.Start());
  Start("dra");
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  ASSERT_TRUE(server_->WaitFor([&] { return PoolHas("edgetpu-2-1") && PoolHas("cpu7"); }));
  Json slice = server_->resources().Slices().at(0);
  // The Node's UID came from the API server: the slices go when the Node goes.
  EXPECT_EQ(slice["metadata"]["ownerReferences"][0]["name"], kNode);
  EXPECT_FALSE(slice["metadata"]["ownerReferences"][0].value("uid", "").empty());
  EXPECT_TRUE(fs::exists(dir_.path() / "cdi" / "edgefd.io-device.json"));

  server_->resources().AddClaim(
      "default", "two-big", "00000000-0000-4000-8000-000000000001",
      {{"cores", "edgefd.io", kNode, "cpu6"}, {"cores", "edgefd.io", kNode, "cpu7"}});
  auto answer = kubelet.Prepare("edgefd.io",
                                {{"default", "00000000-0000-4000-8000-000000000001", "two-big"}});
  ASSERT_TRUE(answer) << answer.error().message;
  ASSERT_EQ(answer->at("00000000-0000-4000-8000-000000000001").error, "");
  EXPECT_EQ(answer->at("00000000-0000-4000-8000-000000000001").devices.size(), 2u);
  EXPECT_THAT(
      ReadFile(dir_.path() / "cdi" / "edgefd.io-device_00000000-0000-4000-8000-000000000001.json"),
      HasSubstr("EDGEFD_BIG_CPUS=6,7"));

  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
  EXPECT_FALSE(fs::exists(dir_.path() / "registry" / "edgefd.io-reg.sock"));
  // The slices stay for the restarted plugin (the kubelet removes them if it never comes back).
  EXPECT_TRUE(PoolHas("cpu7"));
}

TEST_F(DraCliTest, ARestartedPluginKeepsItsPreparedClaims) {
  FakeDraKubelet kubelet(dir_.path() / "registry");
  ASSERT_TRUE(kubelet.Start());
  Start("dra");
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  server_->resources().AddClaim("default", "tpu", "00000000-0000-4000-8000-00000000000a",
                                {{"tpu", "edgefd.io", kNode, "edgetpu-2-1"}});
  auto first =
      kubelet.Prepare("edgefd.io", {{"default", "00000000-0000-4000-8000-00000000000a", "tpu"}});
  ASSERT_TRUE(first);
  ASSERT_EQ(first->at("00000000-0000-4000-8000-00000000000a").error, "");
  ASSERT_EQ(Stop(), 0) << plugin_->err();
  // The claim is gone from the API server meanwhile: only the checkpoint can answer.
  server_->resources().DeleteClaim("default", "tpu");
  Start("dra");
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io",
                              [](const auto& p) { return p.registered && p.registrations == 2; }));
  auto again =
      kubelet.Prepare("edgefd.io", {{"default", "00000000-0000-4000-8000-00000000000a", "tpu"}});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->at("00000000-0000-4000-8000-00000000000a").error, "");
  EXPECT_EQ(again->at("00000000-0000-4000-8000-00000000000a").devices[0].cdi_ids,
            first->at("00000000-0000-4000-8000-00000000000a").devices[0].cdi_ids);
  auto undone =
      kubelet.Unprepare("edgefd.io", {{"default", "00000000-0000-4000-8000-00000000000a", "tpu"}});
  ASSERT_TRUE(undone);
  EXPECT_EQ(undone->at("00000000-0000-4000-8000-00000000000a"), "");
  EXPECT_FALSE(fs::exists(dir_.path() / "cdi" /
                          "edgefd.io-device_00000000-0000-4000-8000-00000000000a.json"));
}

// The case of issue 17: a corrupt checkpoint at start-up cost a running pod its claim's CDI
// spec. Now the program rebuilds it from the cluster, and says so in an Event and a metric.
TEST_F(DraCliTest, ACorruptCheckpointIsRebuiltAndTheNodeIsToldInAnEvent) {
  const std::string uid = "00000000-0000-4000-8000-00000000000a";
  const fs::path spec = dir_.path() / "cdi" / ("edgefd.io-device_" + uid + ".json");
  const fs::path checkpoint = dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json";
  FakeDraKubelet kubelet(dir_.path() / "registry");
  ASSERT_TRUE(kubelet.Start());
  Start("dra");
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  server_->resources().AddClaim("default", "tpu", uid,
                                {{"tpu", "edgefd.io", kNode, "edgetpu-2-1"}});
  server_->resources().ReserveClaim("default", "tpu", "9a7c4b1e-0000-4000-8000-00000000beef");
  auto first = kubelet.Prepare("edgefd.io", {{"default", uid, "tpu"}});
  ASSERT_TRUE(first);
  ASSERT_EQ(first->at(uid).error, "");
  ASSERT_EQ(Stop(), 0) << plugin_->err();
  WriteFile(checkpoint, ReadFile(checkpoint).substr(0, 40));  // truncated
  Start("dra", {"--metrics-addr", "127.0.0.1:0"});
  const uint16_t port = MetricsPort();
  ASSERT_NE(port, 0) << plugin_->err();
  EXPECT_TRUE(fs::exists(spec));
  EXPECT_THAT(::edgefd::testing::HttpGet(port, "/metrics"),
              HasSubstr("edgefd_dra_checkpoint_corrupt_total 1\n"));
  EXPECT_THAT(::edgefd::testing::HttpGet(port, "/metrics"),
              HasSubstr("edgefd_dra_checkpoint_recovered_claims_total 1\n"));
  Json event;
  for (const auto& r : server_->Requests()) {
    if (r.method == "POST" && r.path == "/api/v1/namespaces/default/events") {
      event = Json::parse(r.body, nullptr, false);
    }
  }
  EXPECT_EQ(event.value("reason", ""), "DraCheckpointRecovered");
  EXPECT_EQ(event.value("type", ""), "Warning");
  EXPECT_EQ(StringAt(event, "/involvedObject/kind"), "Node");
  EXPECT_EQ(StringAt(event, "/involvedObject/name"), kNode);
  EXPECT_FALSE(StringAt(event, "/involvedObject/uid").empty());
  EXPECT_THAT(event.value("message", ""), HasSubstr("rebuilt 1 prepared claim(s)"));
  EXPECT_THAT(event.value("message", ""), HasSubstr(checkpoint.string() + ".corrupt."));
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io",
                              [](const auto& p) { return p.registered && p.registrations == 2; }));
  auto again = kubelet.Prepare("edgefd.io", {{"default", uid, "tpu"}});
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(again->at(uid).devices[0].cdi_ids, first->at(uid).devices[0].cdi_ids);
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
}

TEST_F(DraCliTest, ACheckpointOfANewerVersionStopsTheProgramAndStaysAsItIs) {
  const fs::path checkpoint = dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json";
  fs::create_directories(checkpoint.parent_path());
  const std::string newer = R"({"version": 2, "claims": {}})";
  WriteFile(checkpoint, newer);
  Start("dra");
  EXPECT_EQ(plugin_->Wait(), 1);
  EXPECT_THAT(plugin_->err(), HasSubstr(checkpoint.string()));
  EXPECT_THAT(plugin_->err(), HasSubstr("written by a newer edgefd"));
  EXPECT_EQ(ReadFile(checkpoint), newer);
}

TEST_F(DraCliTest, ServesMetricsAndReadinessOverHttp) {
  FakeDraKubelet kubelet(dir_.path() / "registry");
  ASSERT_TRUE(kubelet.Start());
  Start("dra", {"--metrics-addr", "127.0.0.1:0"});  // the later flag wins
  const uint16_t port = MetricsPort();
  ASSERT_NE(port, 0) << plugin_->err();
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  // The publisher logs the pool after it has counted it as written.
  ASSERT_TRUE(plugin_->WaitFor([](const std::string&, const std::string& err) {
    return err.find("published pool rock5b generation") != std::string::npos;
  })) << plugin_->err();
  EXPECT_THAT(::edgefd::testing::HttpGet(port, "/readyz"), HasSubstr("HTTP/1.1 200"));
  const std::string metrics = ::edgefd::testing::HttpGet(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("edgefd_dra_registered 1"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_dra_pool_devices 9"));
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
}

TEST_F(DraCliTest, BothModesServeTheDevicePluginToo) {
  FakeDraKubelet dra(dir_.path() / "registry");
  ASSERT_TRUE(dra.Start());
  ::edgefd::testing::FakeKubelet dp(dir_.path() / "device-plugins");
  ASSERT_TRUE(dp.Start());
  Start("both", {"--cdi"});
  ASSERT_TRUE(dra.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  ASSERT_TRUE(dp.WaitFor("edgefd.io/big-cpu", [](const auto& ep) { return !ep.lists.empty(); }));
  EXPECT_EQ(dp.Get("edgefd.io/big-cpu")->lists.back().devices_size(), 4);
  ASSERT_TRUE(server_->WaitFor([&] { return PoolHas("cpu4"); }));
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
  EXPECT_FALSE(fs::exists(dir_.path() / "device-plugins" / "edgefd-big-cpu.sock"));
}

// The case of issue 16, in both orders: a core that one allocator handed out is never handed
// out by the other, across a restart of edgefd.
TEST_F(DraCliTest, BothModesNeverGiveOneCoreToTwoContainers) {
  FakeDraKubelet dra(dir_.path() / "registry");
  ASSERT_TRUE(dra.Start());
  ::edgefd::testing::FakeKubelet dp(dir_.path() / "device-plugins");
  ASSERT_TRUE(dp.Start());
  Start("both");
  ASSERT_TRUE(dra.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  auto health = [](const std::string& id, const std::string& want) {
    return ::edgefd::testing::FakeKubelet::Lists({{id, want}});
  };
  ASSERT_TRUE(dp.WaitFor("edgefd.io/big-cpu", health("cpu6", "Healthy")));
  // DRA first: the prepared claim's core leaves the device plugin's offer, and Allocate refuses it.
  server_->resources().AddClaim("default", "one-big", "00000000-0000-4000-8000-000000000001",
                                {{"cores", "edgefd.io", kNode, "cpu6"}});
  auto prepared =
      dra.Prepare("edgefd.io", {{"default", "00000000-0000-4000-8000-000000000001", "one-big"}});
  ASSERT_TRUE(prepared) << prepared.error().message;
  ASSERT_EQ(prepared->at("00000000-0000-4000-8000-000000000001").error, "");
  EXPECT_TRUE(dp.WaitFor("edgefd.io/big-cpu", health("cpu6", "Unhealthy")));
  v1beta1::AllocateRequest request;
  request.add_container_requests()->add_devices_ids("cpu6");
  v1beta1::AllocateResponse response;
  grpc::ClientContext context;
  grpc::Status refused = dp.Dial("edgefd.io/big-cpu")->Allocate(&context, request, &response);
  EXPECT_THAT(refused.error_message(), HasSubstr("held by ResourceClaim default/one-big"));
  // The device plugin first: the kubelet reports cpu7 assigned, and the claim is refused.
  pod_resources_.Assign({"default", "dp-pod", "app", "edgefd.io/big-cpu", {"cpu7"}});
  server_->resources().AddClaim("default", "other-big", "00000000-0000-4000-8000-000000000002",
                                {{"cores", "edgefd.io", kNode, "cpu7"}});
  auto refused_claim =
      dra.Prepare("edgefd.io", {{"default", "00000000-0000-4000-8000-000000000002", "other-big"}});
  ASSERT_TRUE(refused_claim);
  EXPECT_THAT(refused_claim->at("00000000-0000-4000-8000-000000000002").error,
              HasSubstr("device cpu7 (edgefd.io/big-cpu cpu7) is held by container app of pod "
                        "default/dp-pod"));
  // And the scheduler is told: the pool leaves out the core the device plugin handed out
  // (this API server keeps no device taints).
  EXPECT_TRUE(server_->WaitFor([&] { return !PoolHas("cpu7") && PoolHas("cpu6"); }));
  // edgefd restarts: cpu6 is withdrawn from its very first list again.
  ASSERT_EQ(Stop(), 0) << plugin_->err();
  dp.Restart();
  Start("both");
  ASSERT_TRUE(dp.WaitFor("edgefd.io/big-cpu", [](const auto& ep) {
    return ep.registrations >= 2 && !ep.lists.empty() && ep.list_times.back() >= ep.registered_at;
  }));
  EXPECT_TRUE(health("cpu6", "Unhealthy")(*dp.Get("edgefd.io/big-cpu")));
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
}

TEST_F(DraCliTest, AHungPodResourcesApiDoesNotDelaySigterm) {
  FakeDraKubelet kubelet(dir_.path() / "registry");
  ASSERT_TRUE(kubelet.Start());
  Start("dra");
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  server_->resources().AddClaim("default", "one-big", "00000000-0000-4000-8000-000000000001",
                                {{"cores", "edgefd.io", kNode, "cpu6"}});
  pod_resources_.Hang(true);
  std::thread prepare([&] {
    (void)kubelet.Prepare("edgefd.io",
                          {{"default", "00000000-0000-4000-8000-000000000001", "one-big"}});
  });
  ASSERT_TRUE(pod_resources_.WaitForCalls(1));
  // The prepare waits on the kubelet's 2 s deadline; SIGTERM must not.
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
  prepare.join();
}

TEST_F(DraCliTest, BothModesServeTheDevicePluginWhileTheApiServerIsDown) {
  server_->StopListening();
  ::edgefd::testing::FakeKubelet dp(dir_.path() / "device-plugins");
  ASSERT_TRUE(dp.Start());
  Start("both");
  ASSERT_TRUE(dp.WaitFor("edgefd.io/edgetpu", [](const auto& ep) { return !ep.lists.empty(); }));
  server_->StartListening();  // back: the DRA side comes up too
  ASSERT_TRUE(server_->WaitFor([&] { return PoolHas("edgetpu-2-1"); }));
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
}

TEST_F(DraCliTest, AWrongTokenIsReportedAndSigtermStillStopsIt) {
  WriteFile(dir_.path() / "kubeconfig", server_->Kubeconfig(pki_->ca_cert, "wrong"));
  Start("dra");
  ASSERT_TRUE(server_->WaitFor([&] { return server_->Count("GET", 401) >= 2; }));
  EXPECT_TRUE(server_->resources().Slices().empty());
  EXPECT_EQ(Stop(std::chrono::seconds(1)), 0) << plugin_->err();
}

TEST_F(DraCliTest, AHungApiServerDoesNotDelaySigterm) {
  // The API server accepts the request and never answers (the client would wait 10 s).
  server_->InjectFault({FakeApiServer::FaultKind::kHang, 0, std::chrono::seconds(30), "GET"});
  Start("dra");
  ASSERT_TRUE(server_->WaitFor([&] { return server_->Count("GET") >= 1; }));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(Stop(std::chrono::seconds(2)), 0) << plugin_->err();
  EXPECT_LT(std::chrono::steady_clock::now() - t0,
            ::edgefd::testing::Scaled(std::chrono::milliseconds(1500)));
}

TEST(DraCli, UsageErrorsExitTwoNamingTheInput) {
  RunResult r = RunBinary("--mode dra --device-taints maybe");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("maybe"));
  r = RunBinary("--mode dra --resync 0");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--resync"));
  r = RunBinary("--mode dra --node-name n --kubeconfig /nonexistent/kubeconfig");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/kubeconfig"));
  r = RunBinary("--mode dra --print-slices --inventory /nonexistent/inv.yaml");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/inv.yaml"));
  // Run on its own, the DRA program serves the DRA modes only.
  auto direct = ::edgefd::testing::RunCommand(
      {(fs::path(kBin).parent_path() / "edgefd-deviceplugin-dra").string(), "--mode",
       "device-plugin"});
  EXPECT_EQ(direct.exit_code, 2);
  EXPECT_THAT(direct.err, HasSubstr("edgefd-deviceplugin itself"));
}

TEST(DraCli, HelpListsTheSharedFlagGroupsOnce) {
  RunResult r = RunBinary("--mode dra --help");
  ASSERT_EQ(r.code, 0);
  for (const char* flag :
       {"--kubelet-dir", "--cdi-dir", "--root", "--rescan", "--node-name", "--kubeconfig",
        "--resync", "--kubelet-registry-dir", "--metrics-addr", "--pod-resources-socket",
        "/var/lib/kubelet/pod-resources/kubelet.sock", "--dra-checkpoint"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
  // The DRA program's own default for --resync, in the labeller's words.
  EXPECT_THAT(r.output, HasSubstr("re-read the node's ResourceSlices"));
  EXPECT_THAT(r.output, HasSubstr("(default: 30)"));
}

TEST(DraCli, NodeNameComesFromTheFlagThenNodeNameThenTheHostname) {
  auto pool = [](const ::edgefd::testing::CommandResult& r) {
    auto slices = ParseJson(r.out, "--print-slices");
    EXPECT_TRUE(slices.ok()) << r.out << r.err;
    return slices.ok() ? StringAt(*slices, "/0/spec/pool/name") : std::string();
  };
  const auto args = ::edgefd::testing::CommandLine(
      kBin, "--mode dra --print-slices --output json --inventory " + kInventory);
  EXPECT_EQ(pool(::edgefd::testing::RunCommand(args, {"NODE_NAME=from-env"})), "from-env");
  auto with_flag = args;
  with_flag.insert(with_flag.end(), {"--node-name", "from-flag"});
  EXPECT_EQ(pool(::edgefd::testing::RunCommand(with_flag, {"NODE_NAME=from-env"})), "from-flag");
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  auto without = args;
  without.insert(without.begin(), {"/usr/bin/env", "-u", "NODE_NAME"});
  EXPECT_EQ(pool(::edgefd::testing::RunCommand(without)), host);
}

TEST(DraCli, PrintSlicesShowsWhatANodeWouldPublish) {
  RunResult r = RunBinary(
      "--mode dra --print-slices --output json --node-name rock5b --inventory " + kInventory);
  ASSERT_EQ(r.code, 0) << r.output;
  Json slices = Json::parse(r.output);
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0]["spec"]["pool"]["name"], "rock5b");
  EXPECT_EQ(slices[0]["spec"]["devices"].size(), 9u);  // eight cores and the Edge TPU
  EXPECT_EQ(slices[0]["spec"]["devices"][8]["attributes"]["productID"]["string"], "9302");
}

TEST(DraCli, PrintSlicesCarriesTheMeasuredSpeedAndRefusesABadCalibration) {
  TempDir dir;
  dir.Write("cal.json", Rock5bCalibration(100));
  const std::string args =
      "--mode dra --print-slices --output json --node-name rock5b --inventory " + kInventory;
  RunResult r = RunBinary(args + " --calibration " + (dir / "cal.json"));
  ASSERT_EQ(r.code, 0) << r.output;
  Json devices = Json::parse(r.output)[0]["spec"]["devices"];
  for (const Json& d : devices) {
    const std::string cls = StringAt(d, "/attributes/coreClass/string");
    const auto mflops = IntegerAt(d, "/attributes/mflops/int");
    if (cls == "big") {
      EXPECT_EQ(mflops, 25000) << d.dump();  // 100 GFLOP/s on 4 cores
    } else if (cls == "little") {
      EXPECT_EQ(mflops, 2500) << d.dump();  // 5 GFLOP/s on 2
    } else {
      EXPECT_EQ(mflops, std::nullopt) << d.dump();  // the Edge TPU
    }
    if (cls.empty()) continue;
    EXPECT_EQ(StringAt(d, "/attributes/calibrationModel/string"), "yolo-tiny");
  }
  // Bad input: the error names the file, the exit is 2, nothing half printed.
  dir.Write("garbage.json", "{\"kind\": ");
  dir.Write("negative.json", R"({"kind": "edgefd-pipeline calibration", "model": "conv",
      "classes": [{"class": "big", "threads": [{"threads": 4, "gflops": -5}]}]})");
  for (const std::string name : {"missing.json", "garbage.json", "negative.json"}) {
    RunResult bad = RunBinary(args + " --calibration " + (dir / name));
    EXPECT_EQ(bad.code, 2) << bad.output;
    EXPECT_THAT(bad.output, HasSubstr(dir / name));
    EXPECT_THAT(bad.output, ::testing::Not(HasSubstr("ResourceSlice")));
  }
}

TEST(DraCli, PrintSlicesTakesTheOneOutputFlag) {
  const std::string args = "--mode dra --print-slices --node-name rock5b --inventory " + kInventory;
  // text (the default): a slice per block, a device per line with its typed attributes' values.
  RunResult text = RunBinary(args);
  ASSERT_EQ(text.code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("slice rock5b-edgefd.io-0 (pool rock5b, 9 devices)\n"));
  EXPECT_THAT(text.output, HasSubstr(" productID=9302"));
  EXPECT_THAT(text.output, HasSubstr(" capacity=1024"));
  // yaml: the same document as json.
  auto yaml =
      ::edgefd::testing::RunCommand(::edgefd::testing::CommandLine(kBin, args + " --output yaml"));
  ASSERT_EQ(yaml.exit_code, 0) << yaml.err;
  EXPECT_THAT(yaml.out, HasSubstr("- apiVersion: resource.k8s.io/v1\n  kind: ResourceSlice\n"));
  RunResult bad = RunBinary(args + " --output xml");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.output, HasSubstr("xml"));
}

TEST(DraCli, VersionNamesTheDraProgram) {
  // Run as itself, and as users run it (edgefd-deviceplugin --mode dra execs it).
  const std::string dra = (fs::path(kBin).parent_path() / "edgefd-deviceplugin-dra").string();
  for (const auto& argv : {std::vector<std::string>{dra, "--version"},
                           std::vector<std::string>{kBin, "--mode", "dra", "--version"}}) {
    auto r = ::edgefd::testing::RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << argv[0];
    EXPECT_THAT(r.out, ::testing::StartsWith("edgefd-deviceplugin-dra ")) << argv[0];
  }
  // The device plugin itself still says its own name.
  RunResult plugin = RunBinary("--version");
  EXPECT_THAT(plugin.output, ::testing::StartsWith("edgefd-deviceplugin "));
}

}  // namespace
}  // namespace edgefd::dra
