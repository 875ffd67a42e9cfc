// One allocation record per node, DRA side: a claim is not prepared on a device that a running
// container holds through the device plugin, as the kubelet's PodResources API (a real gRPC
// server of the real proto, on a unix socket) reports it; and not while that API cannot say.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>
#include <optional>

#include "dra_test_support.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/dra/claims.h"
#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/metrics.h"
#include "edgefd/dra/pod_resources.h"
#include "edgefd/testing/fake_pod_resources.h"
#include "edgefd/testing/timing.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using testing::ClientFor;
using testing::DraInventory;
using testing::ErrorOf;
using testing::FakeApiServer;
using testing::FakeDraKubelet;
using testing::FedRegistry;
using ::testing::HasSubstr;
using testing::kNode;
using testing::TempDir;
using FakePodResources = ::edgefd::testing::FakePodResources;

const auto kDeadline = ::edgefd::testing::Scaled(std::chrono::milliseconds(300));

class AllocationRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "cdi");
    ASSERT_TRUE(kubelet_.Start());
    RestartEdgefd();
  }
  // A fresh preparer over the same files, as after an edgefd restart: nothing carried over
  // in memory.
  void RestartEdgefd() {
    preparer_ = std::make_unique<ClaimPreparer>(hw_.registry(), *api_, ResourceApi("v1"), cdi_,
                                                Checkpoint(checkpoint_), kNode);
    preparer_->SetAssignments([this] { return client_.List(); });
    auto s = preparer_->Start();
    ASSERT_TRUE(s) << s.error().message;
  }
  PrepareResult Prepare(const std::string& name, const std::string& uid) {
    return preparer_->Prepare({"default", uid, name});
  }
  void AssignCore(const std::string& pod, const std::string& cpu) {
    kubelet_.Assign({"default", pod, "app", "edgefd.io/big-cpu", {cpu}});
  }

  TempDir dir_;
  fs::path socket_ = dir_.path() / "pod-resources" / "kubelet.sock";
  fs::path checkpoint_ = dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json";
  FakePodResources kubelet_{socket_};
  PodResourcesClient client_{socket_, kDeadline};
  deviceplugin::CdiSpecDir cdi_{dir_.path() / "cdi"};
  FakeApiServer server_;
  std::unique_ptr<kube::ApiTransport> api_ = ClientFor(server_);
  FedRegistry hw_{DraInventory(2)};
  std::unique_ptr<ClaimPreparer> preparer_;
};

TEST_F(AllocationRecordTest, ACoreAContainerHoldsIsRefusedNamingTheDeviceAndThePod) {
  AssignCore("dp-pod", "cpu4");
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000001",
                               {{"cpu", "edgefd.io", kNode, "cpu4"}});
  PrepareResult r = Prepare("one-core", "00000000-0000-4000-8000-000000000001");
  EXPECT_THAT(ErrorOf(r),
              HasSubstr("ResourceClaim default/one-core: device cpu4 (edgefd.io/big-cpu "
                        "cpu4) is held by container app of pod default/dp-pod through "
                        "the device plugin"));
  ASSERT_FALSE(r.ok());
  // The state does not allow it: the kubelet's retry gets the same answer until the pod goes.
  EXPECT_EQ(r.error().code, ErrorCode::kFailedPrecondition);
  // Nothing recorded, nothing for the runtime to inject.
  EXPECT_TRUE(preparer_->Claims().empty());
  EXPECT_TRUE(cdi_.ClaimSpecs().empty());
  EXPECT_EQ(preparer_->Stats().conflicts, 1u);
  EXPECT_EQ(kubelet_.Calls(), 1);
}

TEST_F(AllocationRecordTest, AStickAContainerHoldsIsRefusedToo) {
  kubelet_.Assign({"vision", "detector", "infer", "edgefd.io/movidius-ncs", {"1-1.2"}});
  server_.resources().AddClaim("default", "stick", "00000000-0000-4000-8000-000000000012",
                               {{"ncs", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  EXPECT_THAT(ErrorOf(Prepare("stick", "00000000-0000-4000-8000-000000000012")),
              HasSubstr("device movidius-ncs-1-1-2 (edgefd.io/movidius-ncs 1-1.2) is held by "
                        "container infer of pod vision/detector"));
}

// The device plugin reads the checkpoint in Allocate: with the claim recorded before the
// kubelet is asked, an Allocate the kubelet's answer cannot show yet is refused instead.
TEST_F(AllocationRecordTest, TheClaimHoldsItsCoresBeforeTheKubeletIsAsked) {
  std::optional<PreparedClaims> seen;
  kubelet_.OnList([&] {
    auto loaded = Checkpoint(checkpoint_).Load();
    if (loaded) seen = *loaded;
  });
  AssignCore("dp-pod", "cpu4");
  server_.resources().AddClaim("default", "held", "00000000-0000-4000-8000-00000000000b",
                               {{"cpu", "edgefd.io", kNode, "cpu4"}});
  server_.resources().AddClaim("default", "free", "00000000-0000-4000-8000-00000000000c",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  ASSERT_EQ(ErrorOf(Prepare("free", "00000000-0000-4000-8000-00000000000c")), "");
  ASSERT_TRUE(seen);
  ASSERT_TRUE(seen->contains("00000000-0000-4000-8000-00000000000c"));
  EXPECT_TRUE(seen->at("00000000-0000-4000-8000-00000000000c").pending);
  EXPECT_EQ(seen->at("00000000-0000-4000-8000-00000000000c").devices[0].device, "cpu5");
  EXPECT_FALSE(Checkpoint(checkpoint_)
                   .Load()
                   ->at("00000000-0000-4000-8000-00000000000c")
                   .pending);  // confirmed
  // A refused claim held its core while it was asked, and holds nothing after.
  seen.reset();
  EXPECT_THAT(ErrorOf(Prepare("held", "00000000-0000-4000-8000-00000000000b")),
              HasSubstr("held by container app"));
  ASSERT_TRUE(seen);
  EXPECT_TRUE(seen->contains("00000000-0000-4000-8000-00000000000b"));
  EXPECT_FALSE(Checkpoint(checkpoint_).Load()->contains("00000000-0000-4000-8000-00000000000b"));
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath("00000000-0000-4000-8000-00000000000b")));
}

TEST_F(AllocationRecordTest, APrepareThatDidNotFinishIsDroppedAtStartAndCheckedAgain) {
  // edgefd stopped while it waited for the kubelet: the record says pending.
  PreparedClaims left;
  left["00000000-0000-4000-8000-00000000000e"] = {
      "00000000-0000-4000-8000-00000000000e", "default", "one-core",
      {{"cpu", kNode, "cpu4", {}}},           {},        true};
  ASSERT_TRUE(Checkpoint(checkpoint_).Save(left));
  RestartEdgefd();
  EXPECT_TRUE(preparer_->Claims().empty());
  // The kubelet asks again, and the check runs again.
  AssignCore("dp-pod", "cpu4");
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-00000000000e",
                               {{"cpu", "edgefd.io", kNode, "cpu4"}});
  EXPECT_THAT(ErrorOf(Prepare("one-core", "00000000-0000-4000-8000-00000000000e")),
              HasSubstr("held by container app"));
}

TEST_F(AllocationRecordTest, AFreeCoreIsPreparedBesideAHeldOne) {
  AssignCore("dp-pod", "cpu4");
  // Another resource's device with a similar ID is not this one.
  kubelet_.Assign({"default", "other", "app", "edgefd.io/little-cpu", {"cpu5"}});
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000002",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  PrepareResult r = Prepare("one-core", "00000000-0000-4000-8000-000000000002");
  ASSERT_EQ(ErrorOf(r), "");
  ASSERT_EQ(r.value().size(), 1u);
  EXPECT_EQ(r.value()[0].device, "cpu5");
  EXPECT_EQ(preparer_->Stats().conflicts, 0u);
}

TEST_F(AllocationRecordTest, AMissingSocketRefusesNamingItRatherThanGuessing) {
  kubelet_.Stop();
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000003",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  PrepareResult r = Prepare("one-core", "00000000-0000-4000-8000-000000000003");
  EXPECT_THAT(ErrorOf(r), HasSubstr("cannot tell whether a container holds its devices"));
  EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);  // passes: the kubelet asks again
  EXPECT_THAT(ErrorOf(r), HasSubstr(socket_.string() + " (the kubelet's PodResources API): does "
                                                       "not exist"));
  EXPECT_TRUE(preparer_->Claims().empty());
  EXPECT_EQ(preparer_->Stats().assignments_unknown, 1u);
  // The kubelet retries; once its API is back the claim is prepared.
  ASSERT_TRUE(kubelet_.Start());
  EXPECT_EQ(ErrorOf(Prepare("one-core", "00000000-0000-4000-8000-000000000003")), "");
}

TEST_F(AllocationRecordTest, ASocketNobodyAnswersOnRefusesNamingIt) {
  kubelet_.Stop();
  // A socket file that refuses connections: bound, never listening (a kubelet that died).
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket_.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000004",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  PrepareResult r = Prepare("one-core", "00000000-0000-4000-8000-000000000004");
  EXPECT_THAT(ErrorOf(r), HasSubstr(socket_.string()));
  EXPECT_THAT(ErrorOf(r), HasSubstr("refusing rather than guessing"));
  EXPECT_TRUE(preparer_->Claims().empty());
}

TEST_F(AllocationRecordTest, AKubeletThatDoesNotAnswerRefusesAtTheDeadline) {
  kubelet_.Hang(true);
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000005",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  PrepareResult r = Prepare("one-core", "00000000-0000-4000-8000-000000000005");
  EXPECT_THAT(ErrorOf(r),
              HasSubstr("no answer within " + std::to_string(kDeadline.count()) + " ms"));
  EXPECT_TRUE(preparer_->Claims().empty());
  kubelet_.Hang(false);
  EXPECT_EQ(ErrorOf(Prepare("one-core", "00000000-0000-4000-8000-000000000005")), "");
}

TEST_F(AllocationRecordTest, SurvivesRestartsOfTheKubeletAndOfEdgefd) {
  AssignCore("dp-pod", "cpu4");
  server_.resources().AddClaim("default", "held", "00000000-0000-4000-8000-00000000000b",
                               {{"cpu", "edgefd.io", kNode, "cpu4"}});
  server_.resources().AddClaim("default", "free", "00000000-0000-4000-8000-00000000000c",
                               {{"cpu", "edgefd.io", kNode, "cpu5"}});
  ASSERT_EQ(ErrorOf(Prepare("free", "00000000-0000-4000-8000-00000000000c")), "");
  // The kubelet restarts: its socket goes away and comes back with the same assignments.
  kubelet_.Stop();
  ASSERT_TRUE(kubelet_.Start());
  EXPECT_THAT(ErrorOf(Prepare("held", "00000000-0000-4000-8000-00000000000b")),
              HasSubstr("held by container app of pod"));
  // edgefd restarts: the refusal comes from the kubelet again, the prepared claim from the
  // checkpoint (answered as before, without asking the kubelet).
  RestartEdgefd();
  EXPECT_THAT(ErrorOf(Prepare("held", "00000000-0000-4000-8000-00000000000b")),
              HasSubstr("held by container app of pod"));
  const int calls = kubelet_.Calls();
  PrepareResult again = Prepare("free", "00000000-0000-4000-8000-00000000000c");
  ASSERT_EQ(ErrorOf(again), "");
  EXPECT_EQ(again.value()[0].device, "cpu5");
  EXPECT_EQ(kubelet_.Calls(), calls);
  // The pod ends: the core is free for the claim.
  kubelet_.Clear();
  EXPECT_EQ(ErrorOf(Prepare("held", "00000000-0000-4000-8000-00000000000b")), "");
}

TEST_F(AllocationRecordTest, TheKubeletSeesTheRefusalInTheClaimsAnswer) {
  AssignCore("dp-pod", "cpu4");
  server_.resources().AddClaim("default", "one-core", "00000000-0000-4000-8000-000000000011",
                               {{"cpu", "edgefd.io", kNode, "cpu4"}});
  fs::path registry_dir = dir_.path() / "plugins_registry";
  fs::create_directories(registry_dir);
  KubeletPluginOptions options;
  options.registry_dir = registry_dir;
  options.plugins_dir = dir_.path() / "plugins";
  KubeletPlugin plugin(*preparer_, options);
  ASSERT_TRUE(plugin.Start());
  FakeDraKubelet dra_kubelet(registry_dir);
  ASSERT_TRUE(dra_kubelet.Start());
  ASSERT_TRUE(dra_kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }));
  auto answer = dra_kubelet.Prepare(
      "edgefd.io", {{"default", "00000000-0000-4000-8000-000000000011", "one-core"}});
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_THAT(answer->at("00000000-0000-4000-8000-000000000011").error,
              HasSubstr("device cpu4 (edgefd.io/big-cpu cpu4) is held by container app of pod "
                        "default/dp-pod"));
  EXPECT_EQ(plugin.Stats().prepare_errors, 1u);
  DraState state;
  state.claims = preparer_->Stats();
  EXPECT_THAT(RenderMetrics(state), HasSubstr("edgefd_dra_prepare_conflicts_total 1\n"));
  EXPECT_THAT(RenderMetrics(state), HasSubstr("edgefd_dra_pod_resources_errors_total 0\n"));
  state.device_plugin_devices = 2;
  EXPECT_THAT(RenderMetrics(state), HasSubstr("edgefd_dra_device_plugin_devices 2\n"));
}

TEST_F(AllocationRecordTest, ThePoolLearnsWhatTheDevicePluginHandedOutByItsDraNames) {
  int changes = 0;
  DevicePluginHoldings holdings(client_, hw_.registry(), std::chrono::hours(1), [&] { ++changes; });
  ASSERT_TRUE(holdings.PollOnce());
  EXPECT_TRUE(holdings.Names().empty());
  EXPECT_EQ(changes, 0);
  AssignCore("dp-pod", "cpu4");
  kubelet_.Assign({"vision", "detector", "infer", "edgefd.io/movidius-ncs", {"1-1.2"}});
  kubelet_.Assign({"gpu", "other", "app", "example.com/gpu", {"cpu5"}});  // not ours
  ASSERT_TRUE(holdings.PollOnce());
  EXPECT_EQ(holdings.Names(), (std::set<std::string>{"cpu4", "movidius-ncs-1-1-2"}));
  EXPECT_EQ(changes, 1);
  ASSERT_TRUE(holdings.PollOnce());  // nothing new: no change to report
  EXPECT_EQ(changes, 1);
  // The kubelet away: the last answer stands, and the poll says why it failed.
  kubelet_.Stop();
  auto failed = holdings.PollOnce();
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, HasSubstr(socket_.string()));
  EXPECT_EQ(holdings.Names().size(), 2u);
  ASSERT_TRUE(kubelet_.Start());
  kubelet_.Clear();
  ASSERT_TRUE(holdings.PollOnce());
  EXPECT_TRUE(holdings.Names().empty());
  EXPECT_EQ(changes, 2);
}

TEST(PodResourcesClient, ListsOnlyEdgefdDevicesOfEveryContainer) {
  TempDir dir;
  FakePodResources kubelet(dir.path() / "kubelet.sock");
  ASSERT_TRUE(kubelet.Start());
  kubelet.Assign({"a", "p1", "c1", "edgefd.io/big-cpu", {"cpu4", "cpu5"}});
  kubelet.Assign({"a", "p1", "c2", "nvidia.com/gpu", {"GPU-1"}});
  kubelet.Assign({"b", "p2", "c1", "edgefd.io/edgetpu", {"1-1.1"}});
  auto list = PodResourcesClient(dir.path() / "kubelet.sock").List();
  ASSERT_TRUE(list) << list.error().message;
  EXPECT_THAT(
      *list, ::testing::ElementsAre(AssignedDevice{"a", "p1", "c1", "edgefd.io/big-cpu", "cpu4"},
                                    AssignedDevice{"a", "p1", "c1", "edgefd.io/big-cpu", "cpu5"},
                                    AssignedDevice{"b", "p2", "c1", "edgefd.io/edgetpu", "1-1.1"}));
}

}  // namespace
}  // namespace edgefd::dra
