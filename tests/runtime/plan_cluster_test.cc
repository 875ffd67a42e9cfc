// `edgefd-plan --from-cluster` (planner_cluster.h): node inventories read from an API server
// (the TLS stand-in of tests/support) — Nodes' edgefd labels and allocatable cores, the
// edgefd.io driver's ResourceSlices — and the program's answers to a cluster it cannot use.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

#include "edgefd/kube/client.h"
#include "edgefd/runtime/planner_cluster.h"
#include "edgefd/testing/fake_apiserver.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/pki.h"
#include "edgefd/testing/process.h"

namespace edgefd::runtime {
namespace {

using testing::FakeApiServer;

const Labels kRock = {
    {"edgefd.io/cpu.arch", "arm64"},        {"edgefd.io/cpu.heterogeneous", "true"},
    {"edgefd.io/cpu.big.capacity", "1024"}, {"edgefd.io/cpu.big.cores", "2"},
    {"edgefd.io/cpu.big.max-mhz", "1800"},  {"edgefd.io/cpu.little.capacity", "381"},
    {"edgefd.io/cpu.little.cores", "4"},    {"edgefd.io/cpu.little.max-mhz", "1416"}};
const Labels kPi = {{"edgefd.io/cpu.arch", "arm64"},
                    {"edgefd.io/cpu.heterogeneous", "false"},
                    {"edgefd.io/cpu.cores", "4"},
                    {"edgefd.io/cpu.max-mhz", "1500"}};

// A CPU device as the DRA driver publishes it (resource.k8s.io v1: attributes at the top;
// v1beta1: under "basic").
Json CpuDevice(const std::string& cls, int cpu, bool v1beta1, bool tainted = false,
               Json mflops = nullptr) {
  Json body = {{"attributes",
                {{"kind", {{"string", "cpu"}}},
                 {"coreClass", {{"string", cls}}},
                 {"cpu", {{"int", cpu}}},
                 {"capacity", {{"int", cls == "big" ? 1024 : 381}}}}}};
  if (!mflops.is_null()) body["attributes"]["mflops"] = mflops;
  if (tainted)
    body["taints"] = Json::array({{{"key", "edgefd.io/unhealthy"}, {"effect", "NoSchedule"}}});
  const std::string name = cls + "-cpu-" + std::to_string(cpu);
  if (v1beta1) return {{"name", name}, {"basic", body}};
  body["name"] = name;
  return body;
}

Json Slice(const std::string& node, const std::string& driver, Json devices) {
  return {{"apiVersion", "resource.k8s.io/v1"},
          {"kind", "ResourceSlice"},
          {"metadata", {{"name", node + "-" + driver + "-0"}}},
          {"spec",
           {{"driver", driver},
            {"nodeName", node},
            {"pool", {{"name", node}, {"generation", 1}, {"resourceSliceCount", 1}}},
            {"devices", std::move(devices)}}}};
}

class PlanFromCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (pki_ == nullptr) {
      auto pki = testing::TestPki::Create(testing::MakeTempDir("edgefd-pki"));
      ASSERT_TRUE(pki.ok()) << pki.error().message;
      pki_ = new testing::TestPki(*pki);
    }
  }
  void SetUp() override {
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServer::Options{pki_->server_cert, pki_->server_key, pki_->ca_cert});
    server_->SetToken("token-1");
    dir_.Write("kubeconfig", server_->Kubeconfig(pki_->ca_cert, "token-1"));
  }

  // rock-1: an RK3399 whose DRA slice lists its real cores (one little core unhealthy);
  // pi-1: a Pi the device plugin serves (allocatable only); two Nodes that cannot be used.
  void AddCluster(bool v1beta1) {
    server_->AddNode("rock-1", kRock);
    ASSERT_EQ(
        server_->ForeignPatch(
            "rock-1",
            R"({"status": {"allocatable": {"edgefd.io/big-cpu": "2", "edgefd.io/little-cpu": "4"}}})"),
        200);
    Json devices = Json::array();
    for (int cpu : {0, 1, 2, 3}) devices.push_back(CpuDevice("little", cpu, v1beta1, cpu == 3));
    for (int cpu : {4, 5}) devices.push_back(CpuDevice("big", cpu, v1beta1));
    server_->resources().PutSlice(Slice("rock-1", "edgefd.io", devices));
    // Another driver's slice for the same node is not edgefd's cores.
    server_->resources().PutSlice(
        Slice("rock-1", "gpu.example.com", Json::array({CpuDevice("big", 7, v1beta1)})));
    server_->AddNode("pi-1", kPi);
    ASSERT_EQ(
        server_->ForeignPatch("pi-1", R"({"status": {"allocatable": {"edgefd.io/big-cpu": "4"}}})"),
        200);
    server_->AddNode("control-plane", {{"kubernetes.io/hostname", "control-plane"}});
    server_->AddNode("cordoned", kPi);
    ASSERT_EQ(server_->ForeignPatch("cordoned", R"({"spec": {"unschedulable": true}})"), 200);
  }

  std::unique_ptr<kube::ApiTransport> Client() {
    auto config = kube::LoadKubeconfig(dir_ / "kubeconfig");
    EXPECT_TRUE(config.ok()) << config.error().message;
    auto client = kube::MakeKubeClient(*config);
    EXPECT_TRUE(client.ok()) << client.error().message;
    return std::move(*client);
  }

  testing::CommandResult Plan(const std::string& args) {
    const std::string bin =
        (std::filesystem::path(testing::PipelineBin()).parent_path() / "edgefd-plan").string();
    return testing::RunCommand(testing::CommandLine(
        bin, "--model yolo-tiny --kubeconfig " + (dir_ / "kubeconfig") + " " + args));
  }

  // Every request the server saw was a read.
  void ExpectOnlyReads() {
    for (const auto& r : server_->Requests()) EXPECT_EQ(r.method, "GET") << r.path;
  }

  static inline testing::TestPki* pki_ = nullptr;
  testing::TempDir dir_;
  std::unique_ptr<FakeApiServer> server_;
};

TEST_F(PlanFromCluster, ReadsLabelledNodesWithTheirSlicesCoresAndSkipsTheRestByName) {
  for (bool v1beta1 : {false, true}) {
    SCOPED_TRACE(v1beta1 ? "resource.k8s.io/v1beta1" : "resource.k8s.io/v1");
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServer::Options{pki_->server_cert, pki_->server_key, pki_->ca_cert});
    server_->SetToken("token-1");
    dir_.Write("kubeconfig", server_->Kubeconfig(pki_->ca_cert, "token-1"));
    if (v1beta1) server_->resources().SetVersions({"v1beta1"});
    AddCluster(v1beta1);
    auto client = Client();
    std::vector<std::string> skipped;
    auto nodes = NodesFromCluster(*client, "test-cluster", &skipped);
    ASSERT_TRUE(nodes.ok()) << nodes.error().message;
    ASSERT_EQ(nodes->size(), 2u);
    const NodeInventory* rock = nullptr;
    const NodeInventory* pi = nullptr;
    for (const NodeInventory& n : *nodes) (n.name == "rock-1" ? rock : pi) = &n;
    ASSERT_TRUE(rock != nullptr && pi != nullptr);
    ASSERT_EQ(rock->classes.size(), 2u);
    for (const CoreClass& c : rock->classes) {
      // The slice's real CPU numbers, without the unhealthy core or another driver's device.
      EXPECT_EQ(c.cpus, c.name == "big" ? std::vector<int>({4, 5}) : std::vector<int>({0, 1, 2}))
          << c.name;
    }
    EXPECT_EQ(rock->classes[0].max_mhz, 1800);
    ASSERT_EQ(pi->classes.size(), 1u);
    EXPECT_EQ(pi->classes[0].name, "big");  // a homogeneous node's cores are big
    EXPECT_EQ(pi->classes[0].cpus.size(), 4u);
    ASSERT_EQ(skipped.size(), 2u);
    EXPECT_EQ(skipped[0], "control-plane (no edgefd labels)");
    EXPECT_EQ(skipped[1], "cordoned (unschedulable)");
    ExpectOnlyReads();
  }
}

// The DRA driver's --calibration: each core's `mflops`, read where the labeller published no
// edgefd.io/cpu.<class>.gflops; a label there wins, and a number that is none is not read.
TEST(PlanFromSlices, TheMeasuredSpeedOfTheDraDriverStandsInForMissingLabels) {
  Labels labelled = kRock;
  labelled["edgefd.io/cpu.little.gflops"] = "6.0";  // the labeller's, for 4 cores
  Json items = Json::array();
  for (const char* node : {"rock-1", "rock-2"}) {
    items.push_back({{"metadata",
                      {{"name", node},
                       {"labels", std::string(node) == "rock-1" ? Json(kRock) : Json(labelled)}}},
                     {"status", Json::object()}});
  }
  const Json list = {{"kind", "NodeList"}, {"items", items}};
  std::vector<Json> slices;
  for (const char* node : {"rock-1", "rock-2"}) {
    Json devices = Json::array();
    // One little core says less than the others: the class gets the least.
    for (int cpu : {0, 1, 2, 3}) {
      devices.push_back(CpuDevice("little", cpu, false, false, {{"int", cpu == 2 ? 1800 : 2000}}));
    }
    devices.push_back(CpuDevice("big", 4, false, false, {{"int", 25000}}));
    devices.push_back(CpuDevice("big", 5, true, false, {{"int", 25000}}));
    slices.push_back(Slice(node, "edgefd.io", devices));
  }
  std::vector<std::string> skipped;
  auto nodes = NodesFromNodeList(list, "cluster", &skipped, slices);
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 2u);
  for (const NodeInventory& n : *nodes) {
    for (const CoreClass& c : n.classes) {
      SCOPED_TRACE(n.name + " " + c.name);
      ASSERT_TRUE(c.published_gflops.has_value());
      if (n.name == "rock-2" && c.name == "little") {
        EXPECT_DOUBLE_EQ(*c.published_gflops, 6.0);  // the label
        EXPECT_EQ(c.published_cores, 4);
        EXPECT_EQ(c.published_from, "published edgefd.io/cpu.little.gflops");
      } else {
        EXPECT_DOUBLE_EQ(*c.published_gflops, c.name == "big" ? 25.0 : 1.8);  // one core's
        EXPECT_EQ(c.published_cores, 1);
        EXPECT_EQ(c.published_from, "published DRA attribute mflops of the " + c.name + " cores");
      }
    }
  }
  // What is no positive int (a peer's bytes) is not a speed: the estimate stays.
  for (const Json& bad : {Json{{"int", -5}}, Json{{"int", 0}}, Json{{"string", "9000"}},
                          Json{{"int", 1e12}}, Json("fast")}) {
    SCOPED_TRACE(bad.dump());
    auto one = NodesFromNodeList(
        {{"items", Json::array({items[0]})}}, "cluster", &skipped,
        {Slice("rock-1", "edgefd.io", Json::array({CpuDevice("big", 4, false, false, bad)}))});
    ASSERT_TRUE(one.ok()) << one.error().message;
    for (const CoreClass& c : (*one)[0].classes) EXPECT_FALSE(c.published_gflops) << c.name;
  }
}

TEST_F(PlanFromCluster, PlansPrintsAndWritesManifestsWithoutWritingToTheCluster) {
  AddCluster(false);
  testing::CommandResult r =
      Plan("--from-cluster --link-mbps 100 --json --out " + (dir_ / "planned"));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto plan = ParseJson(r.out, "plan");
  ASSERT_TRUE(plan.ok()) << r.out;
  EXPECT_GT((*plan)["predicted_fps"].get<double>(), 0);
  for (const Json& s : (*plan)["stages"]) {
    EXPECT_TRUE(s["node"] == "rock-1" || s["node"] == "pi-1") << s.dump();
    EXPECT_TRUE(s.contains("io_ms"));
  }
  EXPECT_NE(r.err.find("skipped control-plane (no edgefd labels)"), std::string::npos) << r.err;
  EXPECT_TRUE(
      std::filesystem::exists(std::filesystem::path(dir_ / "planned") / "kustomization.yaml"));
  EXPECT_NE(r.err.find("nothing was applied"), std::string::npos) << r.err;
  ExpectOnlyReads();
  EXPECT_GE(server_->Count("GET"), 3u);  // Nodes, the resource group, ResourceSlices
}

TEST_F(PlanFromCluster, AClusterWithoutAUsableNodeIsAClearErrorAndNothingIsWritten) {
  server_->AddNode("control-plane", {{"kubernetes.io/hostname", "control-plane"}});
  server_->AddNode("cordoned", kPi);
  ASSERT_EQ(server_->ForeignPatch("cordoned", R"({"spec": {"unschedulable": true}})"), 200);
  testing::CommandResult r = Plan("--from-cluster --out " + (dir_ / "planned"));
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("edgefd-plan: no usable node in the cluster: control-plane (no edgefd "
                       "labels), cordoned (unschedulable)"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "planned"));
  ExpectOnlyReads();
}

TEST_F(PlanFromCluster, AnUnreachableOrRefusingServerIsAFailureNamingIt) {
  AddCluster(false);
  server_->SetToken("another-token");  // 401 for ours
  testing::CommandResult r = Plan("--from-cluster");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("edgefd-plan: the cluster: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("/api/v1/nodes"), std::string::npos) << r.err;
  server_->StopListening();
  r = Plan("--from-cluster");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(server_->url()), std::string::npos) << r.err;
}

TEST_F(PlanFromCluster, NodeFilesStillWorkAndTheHelpSaysWhatIsRead) {
  testing::CommandResult r = Plan("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--from-cluster"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--kubeconfig"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing is applied"), std::string::npos) << r.out;
  r = Plan("");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--from-cluster"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace edgefd::runtime
