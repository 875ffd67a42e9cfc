// Preparing claims: checks against the allocation, CDI specs, the checkpoint, restarts.
#include "edgefd/dra/claims.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using testing::ClientFor;
using testing::DraInventory;
using ::testing::ElementsAre;
using testing::FakeApiServer;
using testing::FedRegistry;
using ::testing::HasSubstr;
using testing::kNode;
using testing::TempDir;
using ::testing::UnorderedElementsAre;
using Result = ::edgefd::testing::FakeResourceApi::Result;

Json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return Json::parse(in, nullptr, false);
}

class ClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(cdi_path_);
    Restart();
  }
  // A fresh preparer over the same files, as after a plugin restart.
  void Restart() {
    preparer_ = std::make_unique<ClaimPreparer>(hw_.registry(), *api_, ResourceApi("v1"), cdi_,
                                                Checkpoint(checkpoint_), kNode);
    auto s = preparer_->Start();
    ASSERT_TRUE(s) << s.error().message;
  }
  PrepareResult Prepare(const std::string& name, const std::string& uid) {
    return preparer_->Prepare({"default", uid, name});
  }

  TempDir dir_;
  fs::path cdi_path_ = dir_.path() / "cdi";
  fs::path checkpoint_ = dir_.path() / "plugins" / "edgefd.io" / "checkpoint.json";
  deviceplugin::CdiSpecDir cdi_{cdi_path_};
  FakeApiServer server_;
  std::unique_ptr<kube::ApiTransport> api_ = ClientFor(server_);
  FedRegistry hw_{DraInventory(2)};
  std::unique_ptr<ClaimPreparer> preparer_;
};

TEST_F(ClaimsTest, TwoBigCoresGetTheirEnvironmentThroughAPerClaimCdiSpec) {
  server_.resources().AddClaim(
      "default", "cores", "uid-1",
      {{"cpus", "edgefd.io", kNode, "cpu5"}, {"cpus", "edgefd.io", kNode, "cpu4"}});
  PrepareResult r = Prepare("cores", "uid-1");
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.devices.size(), 2u);
  EXPECT_EQ(r.devices[0].request, "cpus");
  EXPECT_EQ(r.devices[0].pool, kNode);
  EXPECT_EQ(r.devices[0].device, "cpu5");
  EXPECT_THAT(r.devices[0].cdi_ids,
              ElementsAre("edgefd.io/device=cpu5", "edgefd.io/device=claim-uid-1"));
  Json spec = ReadJson(cdi_.ClaimSpecPath("uid-1"));
  EXPECT_EQ(spec["kind"], "edgefd.io/device");
  EXPECT_EQ(spec["devices"][0]["name"], "claim-uid-1");
  EXPECT_THAT(spec["devices"][0]["containerEdits"]["env"].get<std::vector<std::string>>(),
              ElementsAre("EDGEFD_BIG_CPUS=4,5"));
}

TEST_F(ClaimsTest, AStickAndCoresInOneClaimSumUpPerResource) {
  server_.resources().AddClaim("default", "mixed", "uid-2",
                               {{"tpu", "edgefd.io", kNode, "movidius-ncs-1-1-2"},
                                {"cores", "edgefd.io", kNode, "cpu0"},
                                {"gpu", "gpu.example.com", kNode, "gpu0"}});
  PrepareResult r = Prepare("mixed", "uid-2");
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.devices.size(), 2u);  // the other driver's device is not ours to prepare
  Json spec = ReadJson(cdi_.ClaimSpecPath("uid-2"));
  EXPECT_THAT(spec["devices"][0]["containerEdits"]["env"].get<std::vector<std::string>>(),
              ElementsAre("EDGEFD_LITTLE_CPUS=0", "EDGEFD_MOVIDIUS_NCS_DEVICES=1-1.2",
                          "EDGEFD_MOVIDIUS_NCS_DEVNODES=/dev/null"));
}

TEST_F(ClaimsTest, EveryProblemIsThatClaimsErrorNamingIt) {
  auto error = [&](const std::string& name, const std::string& uid) {
    return Prepare(name, uid).error;
  };
  EXPECT_THAT(error("absent", "u0"), HasSubstr("ResourceClaim default/absent not found"));
  server_.resources().AddClaim("default", "pending", "u1", {});
  EXPECT_THAT(error("pending", "u1"), HasSubstr("is not allocated"));
  server_.resources().AddClaim("default", "elsewhere", "u2", {{"r", "edgefd.io", "rpi4", "cpu4"}});
  EXPECT_THAT(error("elsewhere", "u2"), HasSubstr("pool rpi4, but this is node rock5b"));
  server_.resources().AddClaim("default", "unknown", "u3",
                               {{"r", "edgefd.io", kNode, "hailo-0000-01-00-0"}});
  EXPECT_THAT(error("unknown", "u3"), HasSubstr("hailo-0000-01-00-0 is not a device of edgefd.io"));
  server_.resources().AddClaim("default", "replaced", "u4-new",
                               {{"r", "edgefd.io", kNode, "cpu4"}});
  EXPECT_THAT(error("replaced", "u4-old"),
              HasSubstr("has UID u4-new but the kubelet asked for u4-old"));
  server_.resources().AddClaim("default", "foreign", "u5",
                               {{"r", "gpu.example.com", kNode, "gpu0"}});
  EXPECT_THAT(error("foreign", "u5"), HasSubstr("no device of edgefd.io"));
  server_.resources().AddClaim(
      "default", "configured", "u6", {{"r", "edgefd.io", kNode, "cpu4"}},
      Json::array({{{"source", "FromClaim"},
                    {"opaque", {{"driver", "edgefd.io"}, {"parameters", Json::object()}}}}}));
  EXPECT_THAT(error("configured", "u6"), HasSubstr("no opaque device configuration"));
  EXPECT_THAT(preparer_->Prepare({"", "u7", "x"}).error, HasSubstr("required"));
  // Nothing was recorded or written for any of them.
  EXPECT_TRUE(preparer_->Claims().empty());
  EXPECT_TRUE(cdi_.ClaimSpecs().empty());
}

TEST_F(ClaimsTest, AClaimNameCannotSplitTheRequestOrChangeItsPath) {
  // A name with CR/LF, sent to the DRA socket, made the API server receive a second request of
  // the caller's choosing (a DELETE) with the driver's token; '/', '..', '?' and NUL went
  // into the path unchanged.
  server_.AddNode("n1", {});
  int uid = 0;
  for (const std::string& name :
       {std::string("c\r\n\r\nDELETE /api/v1/nodes/n1 HTTP/1.1\r\nHost: x"),
        std::string("../../../../api/v1/nodes/n1"), std::string(".."), std::string("a/b"),
        std::string("a\0b", 3), std::string("a?watch=1")}) {
    EXPECT_NE(Prepare(name, "u" + std::to_string(++uid)).error, "") << name;
  }
  // Only the last name could be sent at all, escaped: one GET of a claim of that name.
  auto requests = server_.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path.find("/nodes"), std::string::npos) << requests[0].path;
  EXPECT_EQ(requests[0].path,
            "/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/a%3Fwatch%3D1");
  EXPECT_EQ(server_.NodeLabels("n1").size(), 0u);
}

TEST_F(ClaimsTest, AClaimForAVanishedDeviceIsAnErrorNotACrash) {
  server_.resources().AddClaim("default", "stick", "u1",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  hw_.Set(DraInventory(1));  // unplugged between scheduling and prepare
  EXPECT_THAT(Prepare("stick", "u1").error, HasSubstr("has been unplugged from rock5b"));
  hw_.Set(DraInventory(2));  // and back: the kubelet's retry succeeds
  EXPECT_EQ(Prepare("stick", "u1").error, "");
}

TEST_F(ClaimsTest, PrepareIsIdempotentAndSurvivesARestart) {
  server_.resources().AddClaim("default", "cores", "uid-1", {{"cpus", "edgefd.io", kNode, "cpu4"}});
  PrepareResult first = Prepare("cores", "uid-1");
  ASSERT_EQ(first.error, "");
  size_t gets = server_.Count("GET");
  // Repeated: the same answer from the checkpoint, without asking the API server.
  PrepareResult again = Prepare("cores", "uid-1");
  EXPECT_EQ(again.devices, first.devices);
  EXPECT_EQ(server_.Count("GET"), gets);
  // After a restart (and a reboot that emptied /var/run/cdi) the claim is still known, its
  // spec is back, and the API server is not needed to answer.
  fs::remove(cdi_.ClaimSpecPath("uid-1"));
  server_.resources().DeleteClaim("default", "cores");
  Restart();
  EXPECT_TRUE(fs::exists(cdi_.ClaimSpecPath("uid-1")));
  EXPECT_EQ(Prepare("cores", "uid-1").devices, first.devices);
  EXPECT_THAT(preparer_->HeldDevices(), ElementsAre("cpu4"));
  EXPECT_EQ(preparer_->Unprepare({"default", "uid-1", "cores"}), "");
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath("uid-1")));
  EXPECT_TRUE(preparer_->HeldDevices().empty());
  Restart();
  EXPECT_TRUE(preparer_->Claims().empty());
}

TEST_F(ClaimsTest, UnprepareIsIdempotentAndRemovesLeftovers) {
  EXPECT_EQ(preparer_->Unprepare({"default", "never", "x"}), "");
  // A claim spec with no record (a crash between spec and checkpoint) goes at the next start.
  ASSERT_TRUE(cdi_.WriteClaim("orphan", {"EDGEFD_BIG_CPUS=4"}));
  Restart();
  EXPECT_TRUE(cdi_.ClaimSpecs().empty());
}

TEST_F(ClaimsTest, ACorruptCheckpointIsSetAsideAndTheFileStaysWritable) {
  server_.resources().AddClaim("default", "cores", "uid-1", {{"cpus", "edgefd.io", kNode, "cpu4"}});
  ASSERT_EQ(Prepare("cores", "uid-1").error, "");
  {
    std::fstream f(checkpoint_, std::ios::in | std::ios::out);
    f.seekp(20);
    f << "garbage";
  }
  Restart();
  EXPECT_TRUE(preparer_->Claims().empty());
  EXPECT_TRUE(fs::exists(checkpoint_.string() + ".corrupt"));
  EXPECT_TRUE(ReadJson(checkpoint_).is_object());
  // Its spec had no record any more, so it went too; the kubelet's unprepare still succeeds.
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath("uid-1")));
  EXPECT_EQ(preparer_->Unprepare({"default", "uid-1", "cores"}), "");
}

TEST_F(ClaimsTest, ConcurrentPreparesOfManyClaimsAllLand) {
  for (int i = 0; i < 6; ++i) {
    server_.resources().AddClaim("default", "c" + std::to_string(i), "u" + std::to_string(i),
                                 {{"r", "edgefd.io", kNode, "cpu" + std::to_string(i)}});
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back(
        [&, i] { EXPECT_EQ(Prepare("c" + std::to_string(i), "u" + std::to_string(i)).error, ""); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(preparer_->Claims().size(), 6u);
  Restart();
  EXPECT_EQ(preparer_->Claims().size(), 6u);
  EXPECT_EQ(cdi_.ClaimSpecs().size(), 6u);
}

TEST_F(ClaimsTest, AVanishedHeldDeviceIsReportedInTheClaimStatusWithoutTaints) {
  server_.resources().AddClaim("default", "stick", "u1",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  ASSERT_EQ(Prepare("stick", "u1").error, "");
  DeviceLossReporter reporter(hw_.registry(), *preparer_, *api_, ResourceApi("v1"), kNode,
                              [] { return false; });
  reporter.Start();
  auto condition = [&](const char* field) {
    Json claim = server_.resources().Claim("default", "stick");
    return StringAt(claim, ("/status/devices/0/conditions/0/" + std::string(field)).c_str());
  };
  hw_.Set(DraInventory(1));
  ASSERT_TRUE(server_.WaitFor([&] { return condition("status") == "False"; }));
  EXPECT_EQ(condition("reason"), "DeviceUnplugged");
  Json entry = server_.resources().Claim("default", "stick")["status"]["devices"][0];
  EXPECT_EQ(entry["driver"], "edgefd.io");
  EXPECT_EQ(entry["device"], "movidius-ncs-1-1-2");
  hw_.Set(DraInventory(2));
  ASSERT_TRUE(server_.WaitFor([&] { return condition("status") == "True"; }));
  EXPECT_EQ(condition("reason"), "DevicePresent");
  reporter.Stop();
}

TEST_F(ClaimsTest, WithTaintsTheClaimStatusIsLeftAlone) {
  server_.resources().AddClaim("default", "stick", "u1",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  ASSERT_EQ(Prepare("stick", "u1").error, "");
  DeviceLossReporter reporter(hw_.registry(), *preparer_, *api_, ResourceApi("v1"), kNode,
                              [] { return true; });
  hw_.Set(DraInventory(1));
  EXPECT_TRUE(reporter.ReportOnce());
  EXPECT_EQ(server_.Count("PUT"), 0u);
}

}  // namespace
}  // namespace edgefd::dra
