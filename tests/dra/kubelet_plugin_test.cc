// The DRA kubelet plugin against a kubelet stand-in over real gRPC on unix sockets.
#include "edgefd/dra/kubelet_plugin.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"
#include "edgefd/testing/fake_dra_kubelet.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using testing::ClientFor;
using testing::DraInventory;
using ::testing::ElementsAre;
using testing::FakeApiServer;
using testing::FakeDraKubelet;
using testing::FedRegistry;
using ::testing::HasSubstr;
using testing::kNode;
using testing::TempDir;

bool Registered(const FakeDraKubelet::Plugin& p) { return p.registered; }

class KubeletPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(registry_dir_);
    fs::create_directories(dir_.path() / "cdi");
    ASSERT_TRUE(preparer_.Start());
  }
  KubeletPluginOptions Options() {
    KubeletPluginOptions o;
    o.registry_dir = registry_dir_;
    o.plugins_dir = dir_.path() / "plugins";
    return o;
  }

  TempDir dir_;
  fs::path registry_dir_ = dir_.path() / "plugins_registry";
  FakeApiServer server_;
  std::unique_ptr<kube::ApiTransport> api_ = ClientFor(server_);
  FedRegistry hw_{DraInventory(2)};
  deviceplugin::CdiSpecDir cdi_{dir_.path() / "cdi"};
  ClaimPreparer preparer_{hw_.registry(),
                          *api_,
                          ResourceApi("v1"),
                          cdi_,
                          Checkpoint(dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json"),
                          kNode};
};

TEST_F(KubeletPluginTest, RegistersAsADraDriverAndTheKubeletPicksV1) {
  FakeDraKubelet kubelet(registry_dir_);
  ASSERT_TRUE(kubelet.Start());
  KubeletPlugin plugin(preparer_, Options());
  int callbacks = 0;
  plugin.SetOnRegistered([&] { ++callbacks; });
  ASSERT_TRUE(plugin.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered));
  auto p = *kubelet.Get("edgefd.io");
  EXPECT_EQ(p.type, "DRAPlugin");
  EXPECT_EQ(p.socket, (registry_dir_ / "edgefd.io-reg.sock").string());
  EXPECT_EQ(p.endpoint, (dir_.path() / "plugins/edgefd.io/dra.sock").string());
  EXPECT_THAT(p.versions, ElementsAre("v1.DRAPlugin", "v1beta1.DRAPlugin"));
  EXPECT_EQ(p.chosen, "v1.DRAPlugin");
  EXPECT_TRUE(plugin.Registration().registered);
  EXPECT_EQ(callbacks, 1);
}

TEST_F(KubeletPluginTest, PreparesThroughV1AndV1beta1Alike) {
  server_.resources().AddClaim("ns1", "cores", "00000000-0000-4000-8000-000000000001",
                               {{"cpus", "edgefd.io", kNode, "cpu4"}});
  KubeletPlugin plugin(preparer_, Options());
  ASSERT_TRUE(plugin.Start());
  for (auto services :
       {std::vector<std::string>{"v1.DRAPlugin"}, std::vector<std::string>{"v1beta1.DRAPlugin"}}) {
    FakeDraKubelet kubelet(registry_dir_, {services});
    ASSERT_TRUE(kubelet.Start());
    ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered)) << services[0];
    EXPECT_EQ(kubelet.Get("edgefd.io")->chosen, services[0]);
    auto answer =
        kubelet.Prepare("edgefd.io", {{"ns1", "00000000-0000-4000-8000-000000000001", "cores"}});
    ASSERT_TRUE(answer) << answer.error().message;
    const auto& claim = answer->at("00000000-0000-4000-8000-000000000001");
    EXPECT_EQ(claim.error, "");
    ASSERT_EQ(claim.devices.size(), 1u);
    EXPECT_THAT(claim.devices[0].requests, ElementsAre("cpus"));
    EXPECT_EQ(claim.devices[0].pool, kNode);
    EXPECT_EQ(claim.devices[0].device, "cpu4");
    EXPECT_THAT(claim.devices[0].cdi_ids,
                ElementsAre("edgefd.io/device=cpu4",
                            "edgefd.io/device=claim-00000000-0000-4000-8000-000000000001"));
  }
  EXPECT_GE(plugin.Stats().prepare_calls, 2u);
}

TEST_F(KubeletPluginTest, AnswersEveryClaimOfACallEachWithItsOwnOutcome) {
  server_.resources().AddClaim("ns1", "good", "00000000-0000-4000-8000-00000000000d",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-1"}});
  server_.resources().AddClaim("ns1", "gone", "00000000-0000-4000-8000-000000000010",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  hw_.Set(DraInventory(1));
  FakeDraKubelet kubelet(registry_dir_);
  ASSERT_TRUE(kubelet.Start());
  KubeletPlugin plugin(preparer_, Options());
  ASSERT_TRUE(plugin.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered));
  auto answer =
      kubelet.Prepare("edgefd.io", {{"ns1", "00000000-0000-4000-8000-00000000000d", "good"},
                                    {"ns1", "00000000-0000-4000-8000-000000000010", "gone"},
                                    {"ns1", "00000000-0000-4000-8000-00000000000f", "none"}});
  ASSERT_TRUE(answer) << answer.error().message;
  ASSERT_EQ(answer->size(), 3u);
  EXPECT_EQ(answer->at("00000000-0000-4000-8000-00000000000d").error, "");
  EXPECT_THAT(answer->at("00000000-0000-4000-8000-000000000010").error, HasSubstr("unplugged"));
  EXPECT_TRUE(answer->at("00000000-0000-4000-8000-000000000010").devices.empty());
  EXPECT_THAT(answer->at("00000000-0000-4000-8000-00000000000f").error, HasSubstr("not found"));
  EXPECT_EQ(plugin.Stats().prepare_errors, 2u);
  auto undone =
      kubelet.Unprepare("edgefd.io", {{"ns1", "00000000-0000-4000-8000-00000000000d", "good"},
                                      {"ns1", "00000000-0000-4000-8000-00000000000f", "none"}});
  ASSERT_TRUE(undone);
  EXPECT_EQ(undone->at("00000000-0000-4000-8000-00000000000d"), "");
  EXPECT_EQ(undone->at("00000000-0000-4000-8000-00000000000f"), "");
  EXPECT_TRUE(preparer_.Claims().empty());
}

TEST_F(KubeletPluginTest, AKubeletThatKnowsNoOfferedServiceRefusesAndWeSaySo) {
  FakeDraKubelet kubelet(registry_dir_, {{"v1alpha4.DRAPlugin"}});
  ASSERT_TRUE(kubelet.Start());
  KubeletPlugin plugin(preparer_, Options());
  ASSERT_TRUE(plugin.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return !p.error.empty(); }));
  // The fake records a plugin after NotifyRegistrationStatus returned: the plugin has heard.
  EXPECT_EQ(plugin.Registration().notifications, 1);
  EXPECT_FALSE(plugin.Registration().registered);
  EXPECT_THAT(plugin.Registration().error, HasSubstr("none of the services"));
}

TEST_F(KubeletPluginTest, StopUnregistersAndARestartedPluginRegistersAgain) {
  FakeDraKubelet kubelet(registry_dir_);
  ASSERT_TRUE(kubelet.Start());
  {
    KubeletPlugin plugin(preparer_, Options());
    ASSERT_TRUE(plugin.Start());
    ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered));
    plugin.Stop();
    EXPECT_FALSE(fs::exists(plugin.RegistrationSocket()));
    EXPECT_FALSE(fs::exists(plugin.DraSocket()));
    ASSERT_TRUE(kubelet.WaitFor("edgefd.io", [](const auto& p) { return !p.registered; }));
  }
  KubeletPlugin again(preparer_, Options());
  ASSERT_TRUE(again.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io",
                              [](const auto& p) { return p.registered && p.registrations == 2; }));
}

// Holds the first claim it is asked to prepare until the call is abandoned (20 s at most).
class BlockingHandler final : public ClaimHandler {
 public:
  PrepareResult Prepare(const ClaimRef& ref, const Abandoned& abandoned) override {
    std::unique_lock lock(mu_);
    prepared_.push_back(ref.uid);
    cv_.notify_all();
    if (prepared_.size() == 1) {
      // The kubelet's deadline passes while this claim waits on a slow API server.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (!(abandoned && abandoned()) && std::chrono::steady_clock::now() < deadline) {
        cv_.wait_for(lock, std::chrono::milliseconds(5));
      }
    }
    return Error{"slow"};
  }
  Status Unprepare(const ClaimRef&) override { return Ok{}; }
  std::vector<std::string> Prepared() {
    std::lock_guard lock(mu_);
    return prepared_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> prepared_;
};

// The case of issue 17: two 20-claim calls the kubelet had given up on were still worked, claim
// by claim, and held up a call it waited for. A call past its deadline stops before its next
// claim.
TEST_F(KubeletPluginTest, ACallTheKubeletAbandonedIsNotWorkedFurther) {
  BlockingHandler handler;
  FakeDraKubelet kubelet(registry_dir_);
  ASSERT_TRUE(kubelet.Start());
  KubeletPluginOptions options = Options();
  options.workers = 1;
  KubeletPlugin plugin(handler, options);
  ASSERT_TRUE(plugin.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered));
  std::vector<FakeDraKubelet::Claim> claims;
  for (int i = 0; i < 20; ++i) claims.push_back({"ns1", "uid-" + std::to_string(i), "c"});
  auto answer = kubelet.Prepare("edgefd.io", claims, std::chrono::milliseconds(300));
  ASSERT_FALSE(answer);  // the deadline passed
  // The first claim ends when the plugin sees the call abandoned (its deadline, as the server
  // reckons it, passes a moment after the kubelet's); then the one worker is free again and a
  // claim the kubelet waits for is answered.
  auto next = kubelet.Prepare("edgefd.io", {{"ns1", "uid-next", "next"}});
  ASSERT_TRUE(next) << next.error().message;
  EXPECT_EQ(next->at("uid-next").error, "slow");
  // Only the claim in hand when the call was abandoned was worked, then the next call's.
  EXPECT_THAT(handler.Prepared(), ElementsAre("uid-0", "uid-next"));
  EXPECT_EQ(plugin.Stats().abandoned_calls, 1u);
}

// Answers every claim with the error it is given.
class FailingHandler final : public ClaimHandler {
 public:
  PrepareResult Prepare(const ClaimRef&, const Abandoned&) override {
    std::lock_guard lock(mu_);
    return error_;
  }
  Status Unprepare(const ClaimRef&) override {
    std::lock_guard lock(mu_);
    return error_;
  }
  void Set(Error error) {
    std::lock_guard lock(mu_);
    error_ = std::move(error);
  }

 private:
  std::mutex mu_;
  Error error_;
};

// A claim's error code decides the call's status: a claim given up on (kCancelled: the kubelet
// abandoned the call while the claim was worked, or the plugin is stopping) ends the call
// CANCELLED, as a call found abandoned between two claims does, even when it was the last
// claim; any other error is the claim's answer in a call that succeeds, and the kubelet reads
// it and asks again.
TEST_F(KubeletPluginTest, AClaimGivenUpOnEndsTheCallCancelledAndOtherErrorsAreItsAnswer) {
  FailingHandler handler;
  FakeDraKubelet kubelet(registry_dir_);
  ASSERT_TRUE(kubelet.Start());
  KubeletPlugin plugin(handler, Options());
  ASSERT_TRUE(plugin.Start());
  ASSERT_TRUE(kubelet.WaitFor("edgefd.io", Registered));

  handler.Set(Error{"the API server is not answering", ErrorCode::kUnavailable});
  auto answered = kubelet.Prepare("edgefd.io", {{"ns1", "uid-1", "c"}});
  ASSERT_TRUE(answered) << answered.error().message;
  EXPECT_EQ(answered->at("uid-1").error, "the API server is not answering");
  EXPECT_EQ(plugin.Stats().abandoned_calls, 0u);

  handler.Set(Error{"the kubelet gave up on the call", ErrorCode::kCancelled});
  auto cancelled = kubelet.Prepare("edgefd.io", {{"ns1", "uid-1", "c"}});
  ASSERT_FALSE(cancelled);
  EXPECT_THAT(cancelled.error().message, HasSubstr("cancelled or timed out"));
  EXPECT_EQ(plugin.Stats().abandoned_calls, 1u);
  auto unprepared = kubelet.Unprepare("edgefd.io", {{"ns1", "uid-1", "c"}});
  ASSERT_FALSE(unprepared);
  EXPECT_EQ(plugin.Stats().abandoned_calls, 2u);
}

TEST_F(KubeletPluginTest, MissingRegistrationDirectoryIsAnErrorNamingIt) {
  KubeletPluginOptions o = Options();
  o.registry_dir = dir_.path() / "nope";
  KubeletPlugin plugin(preparer_, o);
  auto s = plugin.Start();
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr((dir_.path() / "nope").string()));
}

}  // namespace
}  // namespace edgefd::dra
