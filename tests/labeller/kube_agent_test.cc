// The reconcile loop against the test API server over TLS on loopback.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "../kube/hostile_server.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/http.h"
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
  const Labels kPlugged = Union(kRk3399, {{"edgefd.io/accel.movidius-ncs", "true"},
                                          {"edgefd.io/accel.movidius-ncs.count", "1"}});

  // A Movidius stick plugged in (discovery reports it, then `changes` fires): whether the
  // Node carries its labels before WaitFor's deadline.
  bool PlugAStick(Rig& rig, ManualChangeSource& changes) {
    rig.hw.Set(kPlugged);
    changes.Fire();
    return server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kPlugged); });
  }
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

TEST_F(KubeAgentTest, AForgedOwnershipAnnotationCannotMakeItDeleteForeignLabels) {
  // Whoever can write the Node (its kubelet can) lists labels edgefd must never touch.
  const Labels protected_labels = {{"node-restriction.kubernetes.io/pool", "gpu"},
                                   {"node-role.kubernetes.io/control-plane", ""},
                                   {"edgefd.io/cpu.arch", "arm64"}};
  server_->AddNode("n1", Union(kForeign, protected_labels),
                   {{"edgefd.io/owned-labels",
                     "edgefd.io/cpu.arch,node-restriction.kubernetes.io/pool,"
                     "node-role.kubernetes.io/control-plane,kubernetes.io/hostname"}});
  Rig rig(Client(), Labels{{"edgefd.io/cpu.arch", "arm64"}});
  ASSERT_TRUE(rig.agent.RunOnce().ok());

  EXPECT_EQ(server_->NodeLabels("n1"), Union(kForeign, protected_labels));
  // The annotation is rewritten with only what edgefd may own.
  EXPECT_EQ(server_->NodeAnnotations("n1").at("edgefd.io/owned-labels"), "edgefd.io/cpu.arch");
  for (const auto& r : server_->Requests()) {
    if (r.method != "PATCH") continue;
    EXPECT_EQ(r.body.find("node-restriction"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("node-role"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("hostname"), std::string::npos) << r.body;
  }
  EXPECT_EQ(rig.metrics.labels_owned, 1);
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
  // (rig.metrics.failures varies: the client resends a request whose kept-alive connection was
  // dropped.)
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

TEST_F(KubeAgentTest, AHardwareEventCutsAHugeRetryAfterShort) {
  // "Retry-After: 1000000000" on one 503 stopped the agent for good: hardware events did not
  // end the wait. The client caps it, and an event ends the wait once the backoff has passed.
  Rig rig(Client(), kRk3399);
  ManualChangeSource changes;
  server_->InjectFault({FaultKind::kStatus, 503, 0ms, "GET", 1000000000});
  RunningAgent running(rig.agent, &changes);
  ASSERT_TRUE(server_->WaitFor([&] { return server_->Count("GET", 503) == 1; }));
  ASSERT_TRUE(PlugAStick(rig, changes));
}

TEST(KubeAgentOnce, ATrickleEndpointMeetsTheOverallOnceDeadlineWhichTheErrorNames) {
  // One byte a second: each attempt would end at its own 10 s timeout, eight of them at 80 s.
  HostileServer trickle([](HostileServer::Conn& c, const std::string&) {
    if (!c.Write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")) return;
    while (c.Write("{") && c.Pause(1000)) {
    }
  });
  ASSERT_TRUE(trickle.ok());
  kube::KubeConfig config;
  config.server = trickle.url();
  config.allow_insecure_http = true;
  config.timeout = std::chrono::seconds(10);
  auto api = kube::MakeKubeClient(config);
  ASSERT_TRUE(api.ok()) << api.error().message;
  AgentMetrics metrics;
  NodeLabeller labeller(**api, "n1", &metrics);
  Hardware hw(kRk3399);
  Agent::Options options = FastAgentOptions();
  options.once_timeout = std::chrono::seconds(1);
  options.on_once_timeout = [&] { (*api)->Cancel(); };
  Agent agent(hw.Discover(), labeller, metrics, options);
  Status done = agent.RunOnce();
  ASSERT_FALSE(done.ok());
  EXPECT_NE(done.error().message.find("--once-timeout"), std::string::npos) << done.error().message;
  EXPECT_EQ(trickle.Heads().size(), 1u);  // the deadline ended the first attempt
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

// Start-up is over when a reconcile first succeeds: then, and only once, the daemon gives back
// what start-up touched (agent_cli.cc: ReleaseStartUpMemory).
TEST_F(KubeAgentTest, SettlesOnceAfterTheFirstReconcileThatSucceeded) {
  server_->StopListening();  // connection refused until the API server comes
  auto api = Client();
  AgentMetrics metrics;
  NodeLabeller labeller(*api, "n1", &metrics);
  ObservedSink observed(labeller);
  Hardware hw(kRk3399);
  std::mutex mu;
  std::condition_variable cv;
  int settled = 0;
  Agent::Options options = FastAgentOptions();
  options.on_settled = [&] {
    std::lock_guard lock(mu);
    ++settled;
    cv.notify_all();
  };
  Agent agent(hw.Discover(), observed, metrics, options);
  ManualChangeSource changes;
  RunningAgent running(agent, &changes);
  ASSERT_TRUE(observed.WaitFor(0, 2));  // the first failure is over
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(settled, 0);
  }
  server_->StartListening();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return settled > 0; }));
  }
  changes.Fire();
  ASSERT_TRUE(observed.WaitFor(2, 2));
  changes.Fire();
  ASSERT_TRUE(observed.WaitFor(3, 2));  // the second success is over
  std::lock_guard lock(mu);
  EXPECT_EQ(settled, 1);
}

TEST_F(KubeAgentTest, ReconcilesOnEveryInventoryChange) {
  Rig rig(Client(), kRk3399);  // resync: 1 h, so only the notifications cause patches
  ManualChangeSource changes;
  RunningAgent running(rig.agent, &changes);
  ASSERT_TRUE(
      server_->WaitFor([&] { return server_->NodeLabels("n1") == Union(kForeign, kRk3399); }));
  ASSERT_TRUE(PlugAStick(rig, changes));

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
  EXPECT_EQ(st.error().code, ErrorCode::kUnauthenticated);
}

// Whether an attempt is repeated is the error's code: bad input is refused at once, before any
// request; a stop (kCancelled) is not retried either.
TEST_F(KubeAgentTest, ABadNodeNameIsBadInputNeitherSentNorRetried) {
  Rig rig(Client(), kRk3399, "a/b");
  Status st = rig.agent.RunOnce();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << st.error().message;
  EXPECT_EQ(ExitStatus(st.error()), 2);
  EXPECT_EQ(server_->Count("GET"), 0u);
}

TEST_F(KubeAgentTest, AStopEndsOnceWithoutAnotherAttempt) {
  server_->InjectFault({FaultKind::kHang, 0, 30s, "GET"});
  Rig rig(Client(), kRk3399);
  std::thread stopper([&] {
    ASSERT_TRUE(server_->WaitFor([&] { return server_->Count("GET") >= 1; }));
    rig.agent.Stop();
    rig.api->Cancel();
  });
  Status st = rig.agent.RunOnce();
  stopper.join();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kCancelled) << st.error().message;
  EXPECT_EQ(server_->Count("GET"), 1u);
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

namespace edgefd::testing {
namespace {

using namespace std::chrono_literals;

// Readiness follows the last reconcile, and rotated credentials are picked up from disk.
class KubeReadinessTest : public KubeTest {
 protected:
  // An in-cluster config over a projected service-account volume holding `ca` and token-1.
  KubeConfig InCluster(ProjectedVolume& sa, const std::filesystem::path& ca) {
    sa.Publish({{"ca.crt", ReadFile(ca)}, {"token", "token-1\n"}});
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()).c_str(), 1);
    auto config = InClusterConfig(sa.path());
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    EXPECT_TRUE(config.ok()) << config.error().message;
    config->timeout = 2s;
    return *config;
  }
  static Agent::Options Options() {
    Agent::Options o = FastAgentOptions();
    o.unready_after = 100ms;
    return o;
  }
  // What /readyz answers: the status line's code and the body.
  static std::pair<int, std::string> Readyz(uint16_t port) {
    std::string r = HttpGet(port, "/readyz");
    int status = r.size() > 12 ? std::atoi(r.c_str() + 9) : -1;
    size_t body = r.find("\r\n\r\n");
    return {status, body == std::string::npos ? "" : r.substr(body + 4)};
  }
};

TEST_F(KubeReadinessTest, ACaRotationTurnsItNotReadyUntilTheNewBundleIsReadFromDisk) {
  ProjectedVolume sa(dir_ / "sa");
  Rig rig(Client(InCluster(sa, pki_->ca_cert)), {{"edgefd.io/cpu.arch", "arm64"}}, "n1", Options());
  auto health = StartHealthEndpoint("127.0.0.1:0", AgentHealth(rig.metrics), "--metrics-addr");
  ASSERT_TRUE(health.ok()) << health.error().message;
  ManualChangeSource changes;
  RunningAgent running(rig.agent, &changes);
  ASSERT_TRUE(WaitUntil([&] { return rig.metrics.ready.load(); }));
  EXPECT_EQ(Readyz((*health)->port()).first, 200);

  // The cluster's CA is rotated: the API server presents a certificate of the new CA...
  server_->SetCertificate(pki_->other_server_cert, pki_->other_server_key);
  rig.hw.Set({{"edgefd.io/cpu.arch", "arm64"}, {"edgefd.io/camera", "true"}});
  changes.Fire();
  ASSERT_TRUE(WaitUntil([&] { return !rig.metrics.ready.load(); }))
      << "the probes stayed green while every request failed";
  auto [status, body] = Readyz((*health)->port());
  EXPECT_EQ(status, 503);
  EXPECT_NE(body.find("not trusted"), std::string::npos) << body;

  // ... and the kubelet updates ca.crt by swapping the volume's ..data symlink.
  sa.Publish({{"ca.crt", ReadFile(pki_->other_ca_cert)}, {"token", "token-1\n"}});
  ASSERT_TRUE(WaitUntil([&] {
    return rig.metrics.ready.load() && server_->NodeLabels("n1").count("edgefd.io/camera") == 1;
  })) << rig.metrics.NotReadyReason();
  EXPECT_EQ(Readyz((*health)->port()).first, 200);
}

TEST_F(KubeReadinessTest, APersistentAuthFailureTurnsItNotReadyAndRecoveryReady) {
  ProjectedVolume sa(dir_ / "sa");
  Rig rig(Client(InCluster(sa, pki_->ca_cert)), {{"edgefd.io/cpu.arch", "arm64"}}, "n1", Options());
  ManualChangeSource changes;
  RunningAgent running(rig.agent, &changes);
  ASSERT_TRUE(WaitUntil([&] { return rig.metrics.ready.load(); }));

  // The service account's token is revoked: every request gets 401.
  server_->SetToken("token-2");
  changes.Fire();
  ASSERT_TRUE(WaitUntil([&] { return !rig.metrics.ready.load(); }));
  EXPECT_NE(rig.metrics.NotReadyReason().find("401"), std::string::npos)
      << rig.metrics.NotReadyReason();

  // The kubelet projects a valid token: the retries succeed and it is ready again.
  sa.Publish({{"ca.crt", ReadFile(pki_->ca_cert)}, {"token", "token-2\n"}});
  ASSERT_TRUE(WaitUntil([&] { return rig.metrics.ready.load(); })) << rig.metrics.NotReadyReason();
}

TEST_F(KubeReadinessTest, AShortOutageKeepsItReadyALongOneDoesNot) {
  Agent::Options options = Options();
  options.unready_after = 1h;  // a retry will fix it: stay ready through the outage
  Rig rig(Client(), {{"edgefd.io/cpu.arch", "arm64"}}, "n1", options);
  ObservedSink observed(rig.labeller);
  Agent agent(rig.hw.Discover(), observed, rig.metrics, options);
  ManualChangeSource changes;
  RunningAgent running(agent, &changes);
  ASSERT_TRUE(WaitUntil([&] { return rig.metrics.ready.load(); }));
  server_->StopListening();
  changes.Fire();
  ASSERT_TRUE(observed.WaitFor(1, 3));  // the third failure ran after the first one's update
  EXPECT_TRUE(rig.metrics.ready);
}

TEST_F(KubeReadinessTest, KubeconfigClientCertificateFilesAreRereadWhenTheyChange) {
  // A kubeconfig whose user authenticates with certificate files only (no token).
  ProjectedVolume tls(dir_ / "tls");
  tls.Publish({{"tls.crt", ReadFile(pki_->other_client_cert)},
               {"tls.key", ReadFile(pki_->other_client_key)}});
  WriteFile(dir_ / "kubeconfig", KubeconfigYaml(server_->url(), ReadFile(pki_->ca_cert),
                                                "    client-certificate: tls/tls.crt\n"
                                                "    client-key: tls/tls.key\n"));
  auto config = LoadKubeconfig(dir_ / "kubeconfig");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto api = Client(*config);
  auto get = [&] {
    auto r = api->Send("GET", "/api/v1/nodes/n1", "", "");
    return r.ok() ? r->status : -1;
  };
  EXPECT_EQ(get(), 401);  // signed by a CA the API server does not trust
  tls.Publish({{"tls.crt", ReadFile(pki_->client_cert)}, {"tls.key", ReadFile(pki_->client_key)}});
  EXPECT_EQ(get(), 200);
  // A half-written or mismatched pair is refused, and the working one kept.
  tls.Publish({{"tls.crt", ReadFile(pki_->client_cert)}, {"tls.key", "garbage"}});
  EXPECT_EQ(get(), 200);
}

TEST(HealthServer, ReadyOnlyAfterASuccessfulReconcileAndServesMetrics) {
  AgentMetrics metrics;
  auto server = StartHealthEndpoint("127.0.0.1:0", AgentHealth(metrics), "--metrics-addr");
  ASSERT_TRUE(server.ok()) << server.error().message;
  auto get = [&](const std::string& path) {
    std::string r = HttpGet((*server)->port(), path);
    int status = r.size() > 12 ? std::atoi(r.c_str() + 9) : -1;
    size_t body = r.find("\r\n\r\n");
    return std::make_pair(status, body == std::string::npos ? "" : r.substr(body + 4));
  };
  EXPECT_EQ(get("/healthz").first, 200);
  EXPECT_EQ(get("/readyz").first, 503);
  metrics.ready = true;
  metrics.patches = 3;
  metrics.labels_owned = 12;
  EXPECT_EQ(get("/readyz").first, 200);
  auto [status, body] = get("/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("\nedgefd_node_patches_total 3\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\nedgefd_labels_owned 12\n"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE edgefd_reconciles_total counter"), std::string::npos);
  EXPECT_EQ(get("/nope").first, 404);
}

TEST(HealthServer, BadAddressIsNamed) {
  AgentMetrics metrics;
  auto server = StartHealthEndpoint("9402", AgentHealth(metrics), "--metrics-addr");
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("--metrics-addr '9402'"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::testing
