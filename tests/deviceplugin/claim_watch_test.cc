// One allocation record per node, device-plugin side: what prepared DRA claims hold (the DRA
// checkpoint) is withdrawn from ListAndWatch and GetPreferredAllocation and refused by
// Allocate, against a kubelet stand-in over real gRPC on unix sockets.
#include "edgefd/deviceplugin/claim_watch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/fed_registry.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"

namespace edgefd::deviceplugin {
namespace {

namespace fs = std::filesystem;
using testing::BigLittleInventory;
using ::testing::ElementsAre;
using testing::FakeKubelet;
using testing::FedRegistry;
using ::testing::HasSubstr;
using testing::TempDir;

using testing::kBig;
using testing::kNcs;

constexpr auto Health = &FakeKubelet::HealthIn;
constexpr auto Lists = &FakeKubelet::Lists;

// A claim as the DRA driver records it, holding DRA devices `devices`.
PreparedClaim Claim(const std::string& uid, const std::string& name,
                    std::vector<std::string> devices) {
  PreparedClaim c{uid, "default", name, {}, {}};
  for (std::string& d : devices) c.devices.push_back({"r", "rock5b", std::move(d), {}});
  return c;
}

class ClaimWatchTest : public ::testing::Test {
 protected:
  void TearDown() override { StopEdgefd(); }
  void StartEdgefd() {
    claims_ = std::make_unique<DraClaimWatch>(checkpoint_.path(), &metrics_);
    ASSERT_TRUE(claims_->Start());
    PluginServerOptions options;
    options.kubelet_dir = dir_.path();
    server_ = std::make_unique<PluginServer>(hw_.registry(), options, &metrics_, claims_.get());
    ASSERT_TRUE(server_->Start());
  }
  void StopEdgefd() {
    if (server_) server_->Stop();
    if (claims_) claims_->Stop();
    server_.reset();
    claims_.reset();
  }
  void Hold(std::vector<PreparedClaim> claims) {
    PreparedClaims all;
    for (PreparedClaim& c : claims) all.emplace(c.uid, std::move(c));
    ASSERT_TRUE(checkpoint_.Save(all));
  }
  grpc::Status Allocate(const char* resource, const std::string& id) {
    v1beta1::AllocateRequest request;
    request.add_container_requests()->add_devices_ids(id);
    v1beta1::AllocateResponse response;
    grpc::ClientContext context;
    return kubelet_.Dial(resource)->Allocate(&context, request, &response);
  }
  std::vector<std::string> Preferred(const char* resource, std::vector<std::string> available,
                                     int size) {
    v1beta1::PreferredAllocationRequest request;
    auto* r = request.add_container_requests();
    for (const std::string& id : available) r->add_available_deviceids(id);
    r->set_allocation_size(size);
    v1beta1::PreferredAllocationResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(kubelet_.Dial(resource)->GetPreferredAllocation(&context, request, &response).ok());
    if (response.container_responses_size() != 1) return {};
    const auto& ids = response.container_responses(0).deviceids();
    return {ids.begin(), ids.end()};
  }

  TempDir dir_;
  DraCheckpoint checkpoint_{dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json"};
  FakeKubelet kubelet_{dir_.path()};
  Metrics metrics_;
  FedRegistry hw_{BigLittleInventory(2)};
  std::unique_ptr<DraClaimWatch> claims_;
  std::unique_ptr<PluginServer> server_;
};

TEST_F(ClaimWatchTest, ACoreAClaimHoldsIsWithdrawnAndComesBackWhenFreed) {
  fs::create_directories(checkpoint_.path().parent_path());
  Hold({Claim("uid-1", "cores", {"cpu4"})});
  ASSERT_TRUE(kubelet_.Start());
  StartEdgefd();
  // The very first list already withdraws it: listed, but not allocatable.
  ASSERT_TRUE(kubelet_.WaitFor(kBig, [](const auto& ep) { return !ep.lists.empty(); }));
  EXPECT_EQ(Health(kubelet_.Get(kBig)->lists.front(), "cpu4"), "Unhealthy");
  EXPECT_EQ(Health(kubelet_.Get(kBig)->lists.front(), "cpu5"), "Healthy");
  // The claim is unprepared: the core is the kubelet's to give again.
  Hold({});
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Healthy"}, {"cpu5", "Healthy"}})));
  // A claim on a stick: withdrawn from that resource's stream.
  Hold({Claim("uid-2", "stick", {"movidius-ncs-1-1-1"})});
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, Lists({{"1-1.1", "Unhealthy"}, {"1-1.2", "Healthy"}})));
  EXPECT_THAT(metrics_.Render(), HasSubstr("edgefd_deviceplugin_dra_held_devices 1\n"));
}

TEST_F(ClaimWatchTest, PreferredAllocationAvoidsAndAllocateRefusesAHeldCoreNamingTheClaim) {
  fs::create_directories(checkpoint_.path().parent_path());
  ASSERT_TRUE(kubelet_.Start());
  StartEdgefd();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Healthy"}})));
  // Prepared just now: the kubelet still offers cpu4, and may call before the list reaches it.
  Hold({Claim("uid-1", "cores", {"cpu4"})});
  EXPECT_THAT(Preferred(kBig, {"cpu4", "cpu5"}, 1), ElementsAre("cpu5"));
  grpc::Status refused = Allocate(kBig, "cpu4");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("edgefd.io/big-cpu: device \"cpu4\" is held by ResourceClaim "
                        "default/cores (uid uid-1), prepared through DRA"));
  EXPECT_TRUE(Allocate(kBig, "cpu5").ok());
  EXPECT_THAT(
      metrics_.Render(),
      HasSubstr("edgefd_deviceplugin_dra_refusals_total{resource=\"edgefd.io/big-cpu\"} 1"));
}

TEST_F(ClaimWatchTest, AnUnreadableCheckpointWithdrawsEveryDeviceUntilItIsReadable) {
  fs::create_directories(checkpoint_.path().parent_path());
  testing::WriteFile(checkpoint_.path(), "{\"version\": 1, \"claims\": {\"x\": ");
  ASSERT_TRUE(kubelet_.Start());
  StartEdgefd();
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Unhealthy"}, {"cpu5", "Unhealthy"}})));
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, Lists({{"1-1.1", "Unhealthy"}})));
  EXPECT_THAT(Preferred(kBig, {"cpu4", "cpu5"}, 1), ::testing::IsEmpty());
  grpc::Status refused = Allocate(kBig, "cpu5");
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("the DRA checkpoint cannot be read: " + checkpoint_.path().string()));
  EXPECT_THAT(metrics_.Render(), HasSubstr("edgefd_deviceplugin_dra_checkpoint_readable 0\n"));
  // The DRA driver sets the corrupt file aside and writes a good one.
  Hold({Claim("uid-1", "cores", {"cpu4"})});
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Unhealthy"}, {"cpu5", "Healthy"}})));
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, Lists({{"1-1.1", "Healthy"}})));
  EXPECT_TRUE(Allocate(kBig, "cpu5").ok());
}

TEST_F(ClaimWatchTest, NoCheckpointMeansNoClaimsUntilTheDraDriverArrives) {
  // Not even its directory: DRA is not deployed on this node.
  ASSERT_TRUE(kubelet_.Start());
  StartEdgefd();
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Healthy"}, {"cpu5", "Healthy"}})));
  EXPECT_TRUE(Allocate(kBig, "cpu4").ok());
  // The DRA driver is deployed and prepares a claim.
  fs::create_directories(checkpoint_.path().parent_path());
  Hold({Claim("uid-1", "cores", {"cpu5"})});
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Healthy"}, {"cpu5", "Unhealthy"}})));
}

TEST_F(ClaimWatchTest, RestartsOfTheKubeletAndOfEdgefdRebuildFromTheCheckpoint) {
  fs::create_directories(checkpoint_.path().parent_path());
  Hold({Claim("uid-1", "cores", {"cpu4"})});
  ASSERT_TRUE(kubelet_.Start());
  StartEdgefd();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Unhealthy"}})));
  // The kubelet restarts: the list it gets after registering again still withdraws cpu4.
  kubelet_.Restart();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, [](const auto& ep) {
    return ep.registrations >= 2 && !ep.lists.empty() && ep.list_times.back() >= ep.registered_at;
  }));
  EXPECT_EQ(Health(kubelet_.Get(kBig)->lists.back(), "cpu4"), "Unhealthy");
  // edgefd restarts, and meanwhile the claim is unprepared and another one prepared.
  StopEdgefd();
  Hold({Claim("uid-2", "other", {"cpu5"})});
  StartEdgefd();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, [](const auto& ep) { return ep.registrations >= 3; }));
  EXPECT_TRUE(kubelet_.WaitFor(kBig, Lists({{"cpu4", "Healthy"}, {"cpu5", "Unhealthy"}})));
  EXPECT_FALSE(Allocate(kBig, "cpu5").ok());
}

TEST(ClaimHolds, NameTheClaimAndVouchForNothingWhenUnreadable) {
  TempDir dir;
  DraCheckpoint checkpoint(dir.path() / "checkpoint.json");
  EXPECT_EQ(ReadClaimHolds(checkpoint), ClaimHolds{});  // missing file: no claims
  ASSERT_TRUE(checkpoint.Save({{"u1", Claim("u1", "cores", {"cpu4", "cpu5"})}}));
  ClaimHolds holds = ReadClaimHolds(checkpoint);
  EXPECT_EQ(holds.error, "");
  EXPECT_EQ(holds.HolderOf("cpu4"), "ResourceClaim default/cores (uid u1)");
  EXPECT_EQ(holds.HolderOf("cpu0"), std::nullopt);
  testing::WriteFile(checkpoint.path(), "not json");
  holds = ReadClaimHolds(checkpoint);
  EXPECT_THAT(holds.error, HasSubstr(checkpoint.path().string()));
  EXPECT_THAT(holds.HolderOf("cpu0").value_or(""), HasSubstr("cannot be read"));
}

TEST(ClaimHolds, ACheckpointThatCannotBeReadIsNotNoClaims) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads whatever the modes say";
  TempDir dir;
  DraCheckpoint checkpoint(dir.path() / "edgefd.io" / "checkpoint.json");
  fs::create_directories(checkpoint.path().parent_path());
  ASSERT_TRUE(checkpoint.Save({}));
  fs::permissions(checkpoint.path(), fs::perms::none);
  EXPECT_THAT(ReadClaimHolds(checkpoint).error, HasSubstr("cannot be read"));
  // Nor is a directory it may not search.
  fs::permissions(checkpoint.path(), fs::perms::owner_read | fs::perms::owner_write);
  fs::permissions(checkpoint.path().parent_path(), fs::perms::none);
  EXPECT_THAT(ReadClaimHolds(checkpoint).error, HasSubstr("cannot be read"));
  fs::permissions(checkpoint.path().parent_path(), fs::perms::owner_all);
}

}  // namespace
}  // namespace edgefd::deviceplugin
