// --output nodefeature: the NodeFeature object's shape, and the sink against the test API
// server with and without node-feature-discovery's CRD.
#include "edgefd/agent/nodefeature.h"

#include <gtest/gtest.h>

#include "edgefd/testing/inventories.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

const Labels kLabels = {{"edgefd.io/cpu.heterogeneous", "true"},
                        {"edgefd.io/accel.movidius-ncs", "true"},
                        {"edgefd.io/accel.movidius-ncs.count", "1"}};

Inventory Node(int sticks) {
  Inventory inv = DraInventory(sticks);
  inv.devices.back().camera = true;  // the camera rule's device
  return inv;
}

std::vector<Json> Instances(const Json& object, const std::string& feature) {
  const Json* elements = ValueAt(object, "/spec/features/instances/" + feature + "/elements");
  EXPECT_NE(elements, nullptr) << feature << " missing";
  if (elements == nullptr) return {};
  std::vector<Json> out;
  for (const Json& e : *elements) out.push_back(e.at("attributes"));
  return out;
}

TEST(NodeFeatureObjectTest, CarriesTheLabelsAndTheRawFeaturesNfdRulesMatch) {
  const Json o = NodeFeatureObject("edgefd-system", "rock-1", kLabels, Node(1));
  EXPECT_EQ(o["apiVersion"], "nfd.k8s-sigs.io/v1alpha1");
  EXPECT_EQ(o["kind"], "NodeFeature");
  EXPECT_EQ(o["metadata"]["name"], "rock-1-edgefd");
  EXPECT_EQ(o["metadata"]["namespace"], "edgefd-system");
  EXPECT_EQ(o["metadata"]["labels"], Json({{"nfd.node.kubernetes.io/node-name", "rock-1"}}));
  EXPECT_EQ(o["spec"]["labels"], Json(kLabels));

  const std::vector<Json> cpu = Instances(o, "edgefd.cpu");
  ASSERT_EQ(cpu.size(), 2u);
  EXPECT_EQ(cpu[0], Json({{"class", "big"},
                          {"model", "cortex-a72"},
                          {"cores", "2"},
                          {"cpus", "4,5"},
                          {"capacity", "1024"},
                          {"max-mhz", "1800"}}));
  EXPECT_EQ(cpu[1]["class"], "little");
  EXPECT_EQ(cpu[1]["cores"], "4");
  EXPECT_EQ(cpu[1]["capacity"], "485");

  const std::vector<Json> accel = Instances(o, "edgefd.accelerator");
  ASSERT_EQ(accel.size(), 1u);
  EXPECT_EQ(accel[0], Json({{"rule", "movidius-ncs"},
                            {"id", "1-1.1"},
                            {"subsystem", "usb"},
                            {"vendor", "03e7"},
                            {"product", "2485"},
                            {"driver", "usb"},
                            {"serial", "NCS1-1.1"},
                            {"numa-node", "0"},
                            {"devnodes", "/dev/null"},
                            {"healthy", "true"}}));
  const std::vector<Json> cameras = Instances(o, "edgefd.camera");
  ASSERT_EQ(cameras.size(), 1u);
  EXPECT_EQ(
      cameras[0],
      Json({{"rule", "camera"}, {"id", "1-2"}, {"devnodes", "/dev/video0"}, {"healthy", "true"}}));
  // NFD's schema requires every set's elements, and only string attribute values.
  EXPECT_TRUE(o["spec"]["features"]["flags"].is_object());
  EXPECT_TRUE(o["spec"]["features"]["attributes"].is_object());
}

TEST(NodeFeatureObjectTest, AnUnpluggedDeviceLeavesAnEmptyListSoRulesStopMatching) {
  Inventory none = Node(0);
  none.devices.clear();
  const Json o = NodeFeatureObject("ns", "n1", {}, none);
  EXPECT_EQ(o["spec"]["features"]["instances"]["edgefd.accelerator"],
            Json({{"elements", Json::array()}}));
  EXPECT_EQ(o["spec"]["features"]["instances"]["edgefd.camera"],
            Json({{"elements", Json::array()}}));
  EXPECT_EQ(o["spec"]["labels"], Json::object());
}

TEST(NodeFeatureObjectTest, AHomogeneousNodeHasOneBigClass) {
  Inventory inv;
  inv.cpu.classes.push_back({"all", "cortex-a72", {0, 1, 2, 3}, 1500, 0});
  const std::vector<Json> cpu = Instances(NodeFeatureObject("ns", "pi", {}, inv), "edgefd.cpu");
  ASSERT_EQ(cpu.size(), 1u);
  EXPECT_EQ(cpu[0], Json({{"class", "big"},
                          {"model", "cortex-a72"},
                          {"cores", "4"},
                          {"cpus", "0,1,2,3"},
                          {"max-mhz", "1500"}}));
}

TEST(NodeFeatureObjectTest, NameStaysAValidObjectNameForTheLongestNodeNames) {
  const std::string a(250, 'a');
  const std::string b = std::string(250, 'a') + "b";
  EXPECT_LE(NodeFeatureName(a).size(), 253u);
  EXPECT_TRUE(NodeFeatureName(a).ends_with("-edgefd"));
  EXPECT_NE(NodeFeatureName(a), NodeFeatureName(b));
  EXPECT_EQ(NodeFeatureName(a), NodeFeatureName(a));
  EXPECT_EQ(NodeFeatureName(std::string(246, 'x')), std::string(246, 'x') + "-edgefd");
}

class NodeFeatureSinkTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    api_ = Client();
  }
  NodeFeatureSink Sink(std::chrono::milliseconds recheck = std::chrono::minutes(5)) {
    return NodeFeatureSink(
        *api_, "edgefd-system", "n1", [this]() -> const Inventory& { return inv_; }, &metrics_,
        recheck);
  }
  Json Published() { return server_->nfd().NodeFeature("edgefd-system", "n1-edgefd"); }
  size_t NodePatches() {
    size_t n = 0;
    for (const auto& r : server_->Requests())
      n += r.method == "PATCH" && r.path.starts_with("/api/v1/nodes/");
    return n;
  }
  size_t CrdChecks() {
    size_t n = 0;
    for (const auto& r : server_->Requests())
      n += r.method == "GET" && r.path == "/apis/nfd.k8s-sigs.io/v1alpha1";
    return n;
  }

  std::unique_ptr<ApiTransport> api_;
  AgentMetrics metrics_;
  Inventory inv_ = Node(1);
};

TEST_F(NodeFeatureSinkTest, PublishesTheObjectAndLeavesTheNodeToNfdMaster) {
  NodeFeatureSink sink = Sink();
  ApplyOutcome out = sink.Apply(kLabels);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(Published(), [&] {
    Json want = NodeFeatureObject("edgefd-system", "n1", kLabels, inv_);
    want["metadata"]["resourceVersion"] = Published()["metadata"]["resourceVersion"];
    return want;
  }());
  // No label of edgefd's on the Node: nfd-master puts them there (or does not, while down).
  EXPECT_EQ(server_->NodeLabels("n1").count("edgefd.io/cpu.heterogeneous"), 0u);
  EXPECT_EQ(NodePatches(), 0u);
  for (const auto& r : server_->Requests()) {
    if (r.method == "PATCH") {
      EXPECT_EQ(r.content_type, "application/apply-patch+yaml");
    }
  }

  // Nothing new: the apply changes nothing.
  out = sink.Apply(kLabels);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_FALSE(out.changed);
}

TEST_F(NodeFeatureSinkTest, UnpluggingADeviceUpdatesTheObject) {
  NodeFeatureSink sink = Sink();
  ASSERT_TRUE(sink.Apply(kLabels).ok());
  ASSERT_EQ(Instances(Published(), "edgefd.accelerator").size(), 1u);
  inv_ = Node(0);
  const Labels unplugged = {{"edgefd.io/cpu.heterogeneous", "true"}};
  ApplyOutcome out = sink.Apply(unplugged);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_TRUE(out.changed);
  EXPECT_EQ(Instances(Published(), "edgefd.accelerator").size(), 0u);
  EXPECT_EQ(Published()["spec"]["labels"], Json(unplugged));
}

TEST_F(NodeFeatureSinkTest, WithoutTheCrdItSaysSoOnceAndLabelsTheNode) {
  server_->nfd().SetInstalled(false);
  NodeFeatureSink sink = Sink();
  ApplyOutcome out = sink.Apply(kLabels);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_TRUE(sink.falling_back());
  EXPECT_EQ(server_->NodeLabels("n1").at("edgefd.io/accel.movidius-ncs"), "true");
  EXPECT_EQ(CrdChecks(), 1u);
  // The next reconciles go straight to the Node until the recheck is due.
  inv_ = Node(0);
  ASSERT_TRUE(sink.Apply({{"edgefd.io/cpu.heterogeneous", "true"}}).ok());
  EXPECT_EQ(server_->NodeLabels("n1").count("edgefd.io/accel.movidius-ncs"), 0u);
  EXPECT_EQ(CrdChecks(), 1u);
  EXPECT_EQ(server_->nfd().Applies(), 0u);
}

TEST_F(NodeFeatureSinkTest, ACrdInstalledLaterTakesOverAndTheNodesLabelsAreHandedOver) {
  server_->nfd().SetInstalled(false);
  NodeFeatureSink sink = Sink(std::chrono::milliseconds(0));
  ASSERT_TRUE(sink.Apply(kLabels).ok());
  ASSERT_TRUE(sink.falling_back());
  ASSERT_EQ(server_->NodeAnnotations("n1").count("edgefd.io/owned-labels"), 1u);

  server_->nfd().SetInstalled(true);
  const Labels unplugged = {{"edgefd.io/cpu.heterogeneous", "true"}};
  ApplyOutcome out = sink.Apply(unplugged);
  ASSERT_TRUE(out.ok()) << out.error();
  EXPECT_FALSE(sink.falling_back());
  EXPECT_EQ(Published()["spec"]["labels"], Json(unplugged));
  // The stale labels are gone, the wanted one stays for nfd-master, and edgefd owns none.
  Labels node = server_->NodeLabels("n1");
  EXPECT_EQ(node.count("edgefd.io/accel.movidius-ncs"), 0u);
  EXPECT_EQ(node.count("edgefd.io/accel.movidius-ncs.count"), 0u);
  EXPECT_EQ(node.at("edgefd.io/cpu.heterogeneous"), "true");
  EXPECT_EQ(server_->NodeAnnotations("n1").count("edgefd.io/owned-labels"), 0u);
  EXPECT_EQ(node.at("kubernetes.io/hostname"), "n1");

  // Handed over once: later reconciles touch only the NodeFeature.
  const size_t patches = NodePatches();
  ASSERT_TRUE(sink.Apply(unplugged).ok());
  EXPECT_EQ(NodePatches(), patches);
}

TEST_F(NodeFeatureSinkTest, AMissingNamespaceOrRoleIsAnErrorNamingTheFix) {
  NodeFeatureSink elsewhere(*api_, "no-such-ns", "n1",
                            [this]() -> const Inventory& { return inv_; });
  ApplyOutcome out = elsewhere.Apply(kLabels);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(Retryable(out.status.error()));
  EXPECT_FALSE(elsewhere.falling_back());
  EXPECT_NE(out.error().find("POD_NAMESPACE"), std::string::npos) << out.error();

  server_->InjectFault(
      {.kind = FakeApiServer::FaultKind::kStatus, .status = 403, .method = "PATCH"});
  out = Sink().Apply(kLabels);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(Retryable(out.status.error()));
  EXPECT_NE(out.error().find("nodefeatures.nfd.k8s-sigs.io"), std::string::npos) << out.error();

  server_->InjectFault(
      {.kind = FakeApiServer::FaultKind::kStatus, .status = 503, .method = "PATCH"});
  out = Sink().Apply(kLabels);
  EXPECT_FALSE(out.ok());
  EXPECT_TRUE(Retryable(out.status.error()));

  // A conflict passes: another attempt reads afresh (before, only 429 and 5xx were retried).
  server_->InjectFault(
      {.kind = FakeApiServer::FaultKind::kStatus, .status = 409, .method = "PATCH"});
  out = Sink().Apply(kLabels);
  EXPECT_FALSE(out.ok());
  EXPECT_EQ(out.status.error().code, ErrorCode::kAborted);
  EXPECT_TRUE(Retryable(out.status.error()));
}

TEST_F(NodeFeatureSinkTest, TheAgentConvergesThroughTheNodeFeatureWithoutACrashLoop) {
  server_->nfd().SetInstalled(false);
  NodeFeatureSink sink = Sink();
  Hardware hw(kLabels);
  Agent agent(hw.Discover(), sink, metrics_, FastAgentOptions());
  ASSERT_TRUE(agent.RunOnce().ok());
  EXPECT_TRUE(metrics_.ready);
  EXPECT_EQ(metrics_.failures, 0u);
}

// The labeller as deployed: --output nodefeature with the namespace from POD_NAMESPACE.
class NodeFeatureCliTest : public KubeTest {
 protected:
  CommandResult Run(const std::string& ns) {
    const auto kubeconfig = dir_ / "kubeconfig";
    WriteFile(kubeconfig,
              KubeconfigYaml(server_->url(), ReadFile(pki_->ca_cert), "    tokenFile: token\n"));
    const std::string root = (TestdataDir() / "roots/jetson-nano-blog").string();
    return RunCommand(
        CommandLine(LabellerBin(), "--once --output nodefeature --kubeconfig " +
                                       kubeconfig.string() + " --node-name n1 --root " + root),
        {"POD_NAMESPACE=" + ns});
  }
};

TEST_F(NodeFeatureCliTest, OncePublishesTheNodeFeatureInThePodsNamespace) {
  CommandResult r = Run("edgefd-system");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json o = server_->nfd().NodeFeature("edgefd-system", "n1-edgefd");
  ASSERT_TRUE(o.is_object()) << r.err;
  EXPECT_EQ(o["spec"]["labels"]["edgefd.io/board"], "nvidia-jetson-nano");
  EXPECT_FALSE(Instances(o, "edgefd.cpu").empty());
  EXPECT_EQ(server_->NodeLabels("n1").count("edgefd.io/board"), 0u);
}

TEST_F(NodeFeatureCliTest, WithoutTheCrdItSaysSoAndLabelsTheNode) {
  server_->nfd().SetInstalled(false);
  CommandResult r = Run("edgefd-system");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("NodeFeature CRD (nodefeatures.nfd.k8s-sigs.io) is not installed"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(server_->NodeLabels("n1").at("edgefd.io/board"), "nvidia-jetson-nano");
}

}  // namespace
}  // namespace edgefd::testing
