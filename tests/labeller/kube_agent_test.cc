// The reconcile loop against the test API server over TLS on loopback.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "edgefd/discovery/labels.h"
#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

using namespace std::chrono_literals;
using Fault = FakeApiServer::Fault;
using FaultKind = FakeApiServer::FaultKind;

const Labels kRk3399 = {
    {"beta.devicetree.org/rockchip-rk3399", "1"},
    {"edgefd.io/cpu.arch", "arm64"},
    {"edgefd.io/cpu.cores", "6"},
    {"edgefd.io/cpu.heterogeneous", "true"},
};

Labels Union(Labels a, const Labels& b) {
  a.insert(b.begin(), b.end());
  return a;
}

class KubeAgentTest : public KubeTest {
 protected:
  const Labels kForeign = {{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/arch", "arm64"}};
};

TEST_F(KubeAgentTest, ConvergesWithOnePatchAndKeepsForeignLabels) {
  Rig rig(Client(), kRk3399);
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  EXPECT_EQ(server_->NodeLabels("n1"), Union(kForeign, kRk3399));
  EXPECT_EQ(ParseOwnedLabels(server_->NodeAnnotations("n1").at("edgefd.io/owned-labels")),
            (std::set<std::string>{"beta.devicetree.org/rockchip-rk3399", "edgefd.io/cpu.arch",
                                   "edgefd.io/cpu.cores", "edgefd.io/cpu.heterogeneous"}));
  ASSERT_EQ(server_->Count("PATCH"), 1u);
  for (const auto& r : server_->Requests()) {
    if (r.method == "PATCH") {
      EXPECT_EQ(r.content_type, "application/merge-patch+json");
    }
  }
  EXPECT_TRUE(rig.metrics.ready);
  EXPECT_EQ(rig.metrics.labels_owned, 4);
  EXPECT_EQ(rig.metrics.patches, 1u);
}

TEST_F(KubeAgentTest, RemovesStaleOwnedLabelsButNeverForeignOnesInOurPrefix) {
  server_->AddNode("n1",
                   Union(kForeign, {{"edgefd.io/accel.movidius-ncs", "true"},
                                    {"edgefd.io/accel.movidius-ncs.count", "1"},
                                    {"edgefd.io/cpu.arch", "arm64"},
                                    {"edgefd.io/site", "plant-7"},
                                    {"beta.devicetree.org/acme-widget", "1"}}),
                   {{"edgefd.io/owned-labels",
                     "edgefd.io/accel.movidius-ncs,edgefd.io/accel.movidius-ncs.count,"
                     "edgefd.io/cpu.arch"}});
  Rig rig(Client(), Labels{{"edgefd.io/cpu.arch", "arm64"}});  // the stick was unplugged
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  EXPECT_EQ(server_->NodeLabels("n1"), Union(kForeign, {{"edgefd.io/cpu.arch", "arm64"},
                                                        {"edgefd.io/site", "plant-7"},
                                                        {"beta.devicetree.org/acme-widget", "1"}}));
  EXPECT_EQ(server_->NodeAnnotations("n1").at("edgefd.io/owned-labels"), "edgefd.io/cpu.arch");
}

TEST_F(KubeAgentTest, ForeignLabelWithAWantedNameIsLeftAlone) {
  // The older devicetree labeller set this one; edgefd must not take it over.
  server_->AddNode("n1", {{"beta.devicetree.org/rockchip-rk3399", "1"}});
  Rig rig(Client(), kRk3399);
  ASSERT_TRUE(rig.agent.RunOnce().ok());
  auto owned = ParseOwnedLabels(server_->NodeAnnotations("n1").at("edgefd.io/owned-labels"));
  EXPECT_EQ(owned.count("beta.devicetree.org/rockchip-rk3399"), 0u);
  EXPECT_EQ(server_->NodeLabels("n1"), kRk3399);  // value as it was, and ours all there
}

TEST_F(KubeAgentTest, ConcurrentWriterGetsNoLostUpdate) {
  Rig rig(Client(), kRk3399);
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  // Between the labeller's GET and its PATCH another writer adds its label and deletes one
  // of ours. Without the resourceVersion precondition our patch (which did not mention
  // cpu.cores, present at GET time) would succeed and cpu.cores would stay deleted.
  bool once = false;
  server_->SetBeforePatch([&] {
    if (once) return;
    once = true;
    EXPECT_EQ(server_->ForeignPatch("n1", R"({"metadata":{"labels":{
        "team":"vision","edgefd.io/cpu.cores":null}}})"),
              200);
  });
  rig.hw.Set(Union(kRk3399, {{"edgefd.io/camera", "true"}}));
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  EXPECT_EQ(server_->NodeLabels("n1"),
            Union(Union(kForeign, kRk3399), {{"team", "vision"}, {"edgefd.io/camera", "true"}}));
  EXPECT_EQ(server_->Count("PATCH", 409), 1u);
  EXPECT_EQ(rig.metrics.conflicts, 1u);
}

TEST_F(KubeAgentTest, RestartNeitherWipesNorDuplicates) {
  {
    Rig rig(Client(), kRk3399);
    ASSERT_TRUE(rig.agent.RunOnce().ok());
  }
  const Labels before = server_->NodeLabels("n1");
  const std::string annotation = server_->NodeAnnotations("n1").at("edgefd.io/owned-labels");
  const size_t patches = server_->Count("PATCH");

  // A new process: fresh client, fresh state, same hardware.
  Rig rig(Client(), kRk3399);
  ASSERT_TRUE(rig.agent.RunOnce().ok());
  EXPECT_EQ(server_->Count("PATCH"), patches);  // nothing to change
  EXPECT_EQ(server_->NodeLabels("n1"), before);
  EXPECT_EQ(server_->NodeAnnotations("n1").at("edgefd.io/owned-labels"), annotation);
  EXPECT_EQ(rig.metrics.labels_owned, 4);
  EXPECT_TRUE(rig.metrics.ready);
}

TEST_F(KubeAgentTest, ConvergesThroughEveryFault) {
  auto config = Config();
  config.timeout = 300ms;
  Rig rig(Client(config), kRk3399);
  server_->InjectFault({FaultKind::kClose, 0, 0ms, "GET"});
  server_->InjectFault({FaultKind::kStatus, 500, 0ms, "GET"});
  server_->InjectFault({FaultKind::kStatus, 429, 0ms, "GET"});
  server_->InjectFault({FaultKind::kHang, 0, 5s, "GET"});  // past the client's timeout
  server_->InjectFault({FaultKind::kStatus, 503, 0ms, "PATCH"});
  server_->InjectFault({FaultKind::kStatus, 409, 0ms, "PATCH"});
  server_->InjectFault({FaultKind::kClose, 0, 0ms, "PATCH"});
  server_->InjectFault({FaultKind::kDelay, 0, 100ms, "PATCH"});  // slow but in time
  ASSERT_TRUE(rig.agent.RunOnce().ok());
  EXPECT_EQ(server_->NodeLabels("n1"), Union(kForeign, kRk3399));
  // Every fault was met: three requests got no answer, and each error status was seen.
  size_t unanswered = 0;
  for (const auto& r : server_->Requests()) unanswered += r.status == 0;
  EXPECT_EQ(unanswered, 3u);
  EXPECT_EQ(server_->Count("GET", 500), 1u);
  EXPECT_EQ(server_->Count("GET", 429), 1u);
  EXPECT_EQ(server_->Count("PATCH", 503), 1u);
  EXPECT_EQ(server_->Count("PATCH", 409), 1u);
  // (rig.metrics.failures varies: cpprest resends a request whose reused connection was dropped.)
  EXPECT_EQ(rig.metrics.conflicts, 1u);
}

TEST_F(KubeAgentTest, HonoursRetryAfterOn429) {
  Rig rig(Client(), kRk3399);
  server_->InjectFault({FaultKind::kStatus, 429, 0ms, "GET", 1});
  ASSERT_TRUE(rig.agent.RunOnce().ok());
  auto log = server_->Requests();
  ASSERT_GE(log.size(), 2u);
  EXPECT_EQ(log[0].status, 429);
  EXPECT_GE(log[1].at - log[0].at, 1s);
}

TEST_F(KubeAgentTest, RecoversWhenTheApiServerComesBack) {
  server_->StopListening();  // connection refused from here on
  auto api = Client();
  AgentMetrics metrics;
  NodeLabeller labeller(*api, "n1", &metrics);
  ObservedSink observed(labeller);
  Hardware hw(kRk3399);
  Agent agent(hw.Discover(), observed, metrics, FastAgentOptions());
  RunningAgent running(agent, nullptr);
  ASSERT_TRUE(observed.WaitFor(0, 3));
  EXPECT_FALSE(metrics.ready);
  server_->StartListening();
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));
  ASSERT_TRUE(observed.WaitFor(1, 3));
}

TEST_F(KubeAgentTest, ReconcilesOnEveryInventoryChange) {
  Rig rig(Client(), kRk3399);  // resync: 1 h, so only the notifications cause patches
  ManualChangeSource changes;
  RunningAgent running(rig.agent, &changes);
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));

  const Labels plugged = Union(kRk3399, {{"edgefd.io/accel.movidius-ncs", "true"},
                                         {"edgefd.io/accel.movidius-ncs.count", "1"}});
  rig.hw.Set(plugged);
  changes.Fire();
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, plugged); }));

  rig.hw.Set(kRk3399);  // unplugged again
  changes.Fire();
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));
  EXPECT_EQ(rig.metrics.events, 2u);
}

TEST_F(KubeAgentTest, ResyncRepairsLabelsSomebodyRemoved) {
  auto options = FastAgentOptions();
  options.resync = 50ms;
  Rig rig(Client(), kRk3399, "n1", options);
  RunningAgent running(rig.agent, nullptr);
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));
  ASSERT_EQ(server_->ForeignPatch("n1", R"({"metadata":{"labels":{"edgefd.io/cpu.arch":null,
      "edgefd.io/cpu.cores":"99"}}})"),
            200);
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));
}

TEST_F(KubeAgentTest, FollowsARotatedToken) {
  Rig rig(Client(), kRk3399);
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  // The kubelet rotates the projected token: new file content, old token rejected.
  server_->SetToken("token-2");
  WriteFile(dir_ / "token", "token-2\n");
  rig.hw.Set(Union(kRk3399, {{"edgefd.io/camera", "true"}}));
  ASSERT_TRUE(rig.agent.RunOnce().ok());
  EXPECT_EQ(server_->NodeLabels("n1").at("edgefd.io/camera"), "true");
  EXPECT_EQ(server_->Count("GET", 401), 0u);
}

TEST_F(KubeAgentTest, RejectedTokenIsAClearPermanentError) {
  WriteFile(dir_ / "token", "stolen\n");
  Rig rig(Client(), kRk3399);
  Status st = rig.agent.RunOnce();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("401"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("credentials"), std::string::npos) << st.error().message;
  EXPECT_EQ(server_->Count("GET"), 1u);  // not retried: retrying cannot help
  EXPECT_EQ(server_->NodeLabels("n1"), kForeign);
}

TEST_F(KubeAgentTest, UnknownNodeNamesTheNode) {
  Rig rig(Client(), kRk3399, "nope");
  Status st = rig.agent.RunOnce();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("'nope'"), std::string::npos) << st.error().message;
}

TEST_F(KubeAgentTest, NfdFileIsWrittenAtomicallyAndOnlyWhenChanged) {
  auto path = dir_ / "features.d" / "edgefd";
  NfdFileSink nfd(path);
  AgentMetrics metrics;
  Hardware hw(kRk3399);
  Agent agent(hw.Discover(), nfd, metrics, FastAgentOptions());
  ASSERT_TRUE(agent.RunOnce().ok());
  EXPECT_EQ(ReadFile(path),
            "beta.devicetree.org/rockchip-rk3399=1\nedgefd.io/cpu.arch=arm64\n"
            "edgefd.io/cpu.cores=6\nedgefd.io/cpu.heterogeneous=true\n");
  struct stat first {};
  ASSERT_EQ(stat(path.c_str(), &first), 0);
  ASSERT_TRUE(agent.RunOnce().ok());
  struct stat second {};
  ASSERT_EQ(stat(path.c_str(), &second), 0);
  EXPECT_EQ(first.st_ino, second.st_ino);  // unchanged content is not rewritten
  hw.Set(Labels{{"edgefd.io/cpu.arch", "arm64"}});
  ASSERT_TRUE(agent.RunOnce().ok());
  EXPECT_EQ(ReadFile(path), "edgefd.io/cpu.arch=arm64\n");
  size_t entries = 0;
  for (auto& e : std::filesystem::directory_iterator(path.parent_path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);  // no temp files left behind
}

}  // namespace
}  // namespace edgefd::testing
