// Preparing claims: checks against the allocation, CDI specs, the checkpoint, restarts.
#include "edgefd/dra/claims.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <thread>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using testing::ClientFor;
using testing::DraInventory;
using ::testing::ElementsAre;
using testing::ErrorOf;
using testing::FakeApiServer;
using testing::FedRegistry;
using ::testing::HasSubstr;
using testing::kNode;
using testing::TempDir;
using ::testing::UnorderedElementsAre;
using Result = ::edgefd::testing::FakeResourceApi::Result;

constexpr char kUid1[] = "00000000-0000-4000-8000-000000000001";
constexpr char kUid2[] = "00000000-0000-4000-8000-000000000002";
constexpr char kUid3[] = "00000000-0000-4000-8000-000000000003";
constexpr char kUid5[] = "00000000-0000-4000-8000-000000000005";
constexpr char kUid7[] = "00000000-0000-4000-8000-000000000007";
constexpr char kPod[] = "9a7c4b1e-0000-4000-8000-00000000beef";

// Polls `pred` until it holds; false after 20 s.
bool WaitUntil(const std::function<bool()>& pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// The API client, but a GET of a ResourceClaim waits until the test releases it: the window in
// which a Prepare waits on the API server.
class GatedTransport final : public kube::ApiTransport {
 public:
  explicit GatedTransport(kube::ApiTransport& inner) : inner_(inner) {}
  ::edgefd::Result<kube::ApiResponse> Send(std::string_view method, const std::string& path,
                                           const std::string& body,
                                           std::string_view content_type) override {
    if (method == "GET" && path.find("/resourceclaims/") != std::string::npos) {
      std::unique_lock lock(mu_);
      held_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_; });
    }
    return inner_.Send(method, path, body, content_type);
  }
  bool WaitUntilHeld() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return held_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  kube::ApiTransport& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool released_ = false;
};

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
  PrepareResult Prepare(const ClaimRef& ref) { return preparer_->Prepare(ref); }
  // A claim of one big core, allocated here and reserved for a pod.
  void AddReserved(const std::string& name, const std::string& uid, const std::string& core) {
    server_.resources().AddClaim("default", name, uid, {{"cpus", "edgefd.io", kNode, core}});
    server_.resources().ReserveClaim("default", name, kPod);
  }
  // The unreadable checkpoints kept beside the file, oldest first.
  std::vector<fs::path> CorruptCopies() {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(checkpoint_.parent_path())) {
      if (e.path().filename().string().starts_with("checkpoint.json.corrupt.")) {
        out.push_back(e.path());
      }
    }
    std::sort(out.begin(), out.end());
    return out;
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
      "default", "cores", "00000000-0000-4000-8000-000000000001",
      {{"cpus", "edgefd.io", kNode, "cpu5"}, {"cpus", "edgefd.io", kNode, "cpu4"}});
  PrepareResult r = Prepare("cores", "00000000-0000-4000-8000-000000000001");
  ASSERT_EQ(ErrorOf(r), "");
  ASSERT_EQ(r.value().size(), 2u);
  EXPECT_EQ(r.value()[0].request, "cpus");
  EXPECT_EQ(r.value()[0].pool, kNode);
  EXPECT_EQ(r.value()[0].device, "cpu5");
  EXPECT_THAT(r.value()[0].cdi_ids,
              ElementsAre("edgefd.io/device=cpu5",
                          "edgefd.io/device=claim-00000000-0000-4000-8000-000000000001"));
  Json spec = ReadJson(cdi_.ClaimSpecPath("00000000-0000-4000-8000-000000000001"));
  EXPECT_EQ(spec["kind"], "edgefd.io/device");
  EXPECT_EQ(spec["devices"][0]["name"], "claim-00000000-0000-4000-8000-000000000001");
  EXPECT_THAT(spec["devices"][0]["containerEdits"]["env"].get<std::vector<std::string>>(),
              ElementsAre("EDGEFD_BIG_CPUS=4,5"));
}

TEST_F(ClaimsTest, AStickAndCoresInOneClaimSumUpPerResource) {
  server_.resources().AddClaim("default", "mixed", "00000000-0000-4000-8000-000000000002",
                               {{"tpu", "edgefd.io", kNode, "movidius-ncs-1-1-2"},
                                {"cores", "edgefd.io", kNode, "cpu0"},
                                {"gpu", "gpu.example.com", kNode, "gpu0"}});
  PrepareResult r = Prepare("mixed", "00000000-0000-4000-8000-000000000002");
  ASSERT_EQ(ErrorOf(r), "");
  ASSERT_EQ(r.value().size(), 2u);  // the other driver's device is not ours to prepare
  Json spec = ReadJson(cdi_.ClaimSpecPath("00000000-0000-4000-8000-000000000002"));
  EXPECT_THAT(spec["devices"][0]["containerEdits"]["env"].get<std::vector<std::string>>(),
              ElementsAre("EDGEFD_LITTLE_CPUS=0", "EDGEFD_MOVIDIUS_NCS_DEVICES=1-1.2",
                          "EDGEFD_MOVIDIUS_NCS_DEVNODES=/dev/null"));
}

TEST_F(ClaimsTest, EveryProblemIsThatClaimsErrorNamingIt) {
  auto error = [&](const std::string& name, const std::string& uid) {
    return ErrorOf(Prepare(name, uid));
  };
  EXPECT_THAT(error("absent", "00000000-0000-4000-8000-000000000020"),
              HasSubstr("ResourceClaim default/absent not found"));
  server_.resources().AddClaim("default", "pending", "00000000-0000-4000-8000-000000000021", {});
  EXPECT_THAT(error("pending", "00000000-0000-4000-8000-000000000021"),
              HasSubstr("is not allocated"));
  server_.resources().AddClaim("default", "elsewhere", "00000000-0000-4000-8000-000000000022",
                               {{"r", "edgefd.io", "rpi4", "cpu4"}});
  EXPECT_THAT(error("elsewhere", "00000000-0000-4000-8000-000000000022"),
              HasSubstr("pool rpi4, but this is node rock5b"));
  server_.resources().AddClaim("default", "unknown", "00000000-0000-4000-8000-000000000023",
                               {{"r", "edgefd.io", kNode, "hailo-0000-01-00-0"}});
  EXPECT_THAT(error("unknown", "00000000-0000-4000-8000-000000000023"),
              HasSubstr("hailo-0000-01-00-0 is not a device of edgefd.io"));
  server_.resources().AddClaim("default", "replaced", "00000000-0000-4000-8000-000000000028",
                               {{"r", "edgefd.io", kNode, "cpu4"}});
  EXPECT_THAT(error("replaced", "00000000-0000-4000-8000-000000000029"),
              HasSubstr("has UID 00000000-0000-4000-8000-000000000028 but the kubelet asked for "
                        "00000000-0000-4000-8000-000000000029"));
  server_.resources().AddClaim("default", "foreign", "00000000-0000-4000-8000-000000000025",
                               {{"r", "gpu.example.com", kNode, "gpu0"}});
  EXPECT_THAT(error("foreign", "00000000-0000-4000-8000-000000000025"),
              HasSubstr("no device of edgefd.io"));
  server_.resources().AddClaim(
      "default", "configured", "00000000-0000-4000-8000-000000000026",
      {{"r", "edgefd.io", kNode, "cpu4"}},
      Json::array({{{"source", "FromClaim"},
                    {"opaque", {{"driver", "edgefd.io"}, {"parameters", Json::object()}}}}}));
  EXPECT_THAT(error("configured", "00000000-0000-4000-8000-000000000026"),
              HasSubstr("no opaque device configuration"));
  EXPECT_THAT(ErrorOf(preparer_->Prepare({"", "00000000-0000-4000-8000-000000000027", "x"})),
              HasSubstr("the namespace is not a DNS label"));
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
    EXPECT_NE(ErrorOf(Prepare(name, "00000000-0000-4000-8000-00000000010" + std::to_string(++uid))),
              "")
        << name;
  }
  // None is a DNS subdomain, so none reaches the API server (the kube client would also
  // refuse the first five and escape the last: tests/kube).
  EXPECT_EQ(server_.Requests().size(), 0u);
  EXPECT_EQ(server_.NodeLabels("n1").size(), 0u);
}

TEST_F(ClaimsTest, AClaimForAVanishedDeviceIsAnErrorNotACrash) {
  server_.resources().AddClaim("default", "stick", "00000000-0000-4000-8000-000000000021",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  hw_.Set(DraInventory(1));  // unplugged between scheduling and prepare
  EXPECT_THAT(ErrorOf(Prepare("stick", "00000000-0000-4000-8000-000000000021")),
              HasSubstr("has been unplugged from rock5b"));
  hw_.Set(DraInventory(2));  // and back: the kubelet's retry succeeds
  EXPECT_EQ(ErrorOf(Prepare("stick", "00000000-0000-4000-8000-000000000021")), "");
}

TEST_F(ClaimsTest, PrepareIsIdempotentAndSurvivesARestart) {
  server_.resources().AddClaim("default", "cores", "00000000-0000-4000-8000-000000000001",
                               {{"cpus", "edgefd.io", kNode, "cpu4"}});
  PrepareResult first = Prepare("cores", "00000000-0000-4000-8000-000000000001");
  ASSERT_EQ(ErrorOf(first), "");
  size_t gets = server_.Count("GET");
  // Repeated: the same answer from the checkpoint, without asking the API server.
  PrepareResult again = Prepare("cores", "00000000-0000-4000-8000-000000000001");
  EXPECT_EQ(again.value(), first.value());
  EXPECT_EQ(server_.Count("GET"), gets);
  // After a restart (and a reboot that emptied /var/run/cdi) the claim is still known, its
  // spec is back, and the API server is not needed to answer.
  fs::remove(cdi_.ClaimSpecPath("00000000-0000-4000-8000-000000000001"));
  server_.resources().DeleteClaim("default", "cores");
  Restart();
  EXPECT_TRUE(fs::exists(cdi_.ClaimSpecPath("00000000-0000-4000-8000-000000000001")));
  EXPECT_EQ(Prepare("cores", "00000000-0000-4000-8000-000000000001").value(), first.value());
  EXPECT_THAT(preparer_->HeldDevices(), ElementsAre("cpu4"));
  EXPECT_EQ(
      ErrorOf(preparer_->Unprepare({"default", "00000000-0000-4000-8000-000000000001", "cores"})),
      "");
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath("00000000-0000-4000-8000-000000000001")));
  EXPECT_TRUE(preparer_->HeldDevices().empty());
  Restart();
  EXPECT_TRUE(preparer_->Claims().empty());
}

TEST_F(ClaimsTest, UnprepareIsIdempotentAndRemovesLeftovers) {
  EXPECT_EQ(ErrorOf(preparer_->Unprepare({"default", kUid7, "x"})), "");
  // A claim spec with no record (a crash between spec and checkpoint) goes at the next start.
  ASSERT_TRUE(cdi_.WriteClaim(kUid7, {"EDGEFD_BIG_CPUS=4"}));
  Restart();
  EXPECT_TRUE(cdi_.ClaimSpecs().empty());
}

// The case of issue 17: a corrupt or truncated checkpoint lost every prepared claim, and then
// the CDI specs of running pods. Now what the cluster says this node holds is rebuilt first.
TEST_F(ClaimsTest, ATruncatedCheckpointIsRebuiltFromTheClusterBeforeAnythingIsDeleted) {
  AddReserved("running", kUid1, "cpu4");
  AddReserved("running-too", kUid2, "cpu5");
  ASSERT_EQ(ErrorOf(Prepare("running", kUid1)), "");
  ASSERT_EQ(ErrorOf(Prepare("running-too", kUid2)), "");
  // A claim whose pod went away while the plugin was down: allocated, reserved for no one.
  server_.resources().AddClaim("default", "done", kUid3, {{"cpus", "edgefd.io", kNode, "cpu6"}});
  ASSERT_TRUE(cdi_.WriteClaim(kUid3, {"EDGEFD_BIG_CPUS=6"}));
  // Another node's claim and a stale leftover of ours.
  server_.resources().AddClaim("default", "elsewhere", kUid5, {{"r", "edgefd.io", "rpi4", "cpu4"}});
  server_.resources().ReserveClaim("default", "elsewhere", kPod);
  const std::string spec1 = ::edgefd::testing::ReadFile(cdi_.ClaimSpecPath(kUid1));
  // An earlier corrupt copy stays.
  const fs::path earlier = checkpoint_.string() + ".corrupt.20250101T000000.000Z";
  std::ofstream(earlier) << "earlier";
  fs::resize_file(checkpoint_, fs::file_size(checkpoint_) / 2);  // a write cut short
  Restart();
  EXPECT_EQ(preparer_->Claims().size(), 2u);
  EXPECT_THAT(preparer_->HeldDevices(), UnorderedElementsAre("cpu4", "cpu5"));
  EXPECT_EQ(::edgefd::testing::ReadFile(cdi_.ClaimSpecPath(kUid1)), spec1);
  EXPECT_THAT(cdi_.ClaimSpecs(), UnorderedElementsAre(kUid1, kUid2));
  // The truncated file is kept beside the earlier copy, and a fresh checkpoint holds both.
  EXPECT_EQ(CorruptCopies().size(), 2u);
  EXPECT_EQ(::edgefd::testing::ReadFile(earlier), "earlier");
  auto reread = Checkpoint(checkpoint_).Load();
  ASSERT_TRUE(reread) << reread.error().message;
  EXPECT_EQ(reread->size(), 2u);
  ClaimStats stats = preparer_->Stats();
  EXPECT_EQ(stats.checkpoint_corrupt, 1u);
  EXPECT_EQ(stats.recovered_claims, 2u);
  auto recovery = preparer_->Recovery();
  ASSERT_TRUE(recovery);
  EXPECT_EQ(recovery->recovered, 2u);
  EXPECT_EQ(recovery->specs_kept, 2u);
  EXPECT_EQ(recovery->specs_removed, 1u);
  EXPECT_THAT(recovery->Message(), HasSubstr(checkpoint_.string() + ".corrupt."));
  // The kubelet's repeated prepare gets the same answer, without the API server.
  server_.resources().DeleteClaim("default", "running");
  EXPECT_EQ(Prepare("running", kUid1).value()[0].device, "cpu4");
  EXPECT_EQ(ErrorOf(preparer_->Unprepare({"default", kUid2, "running-too"})), "");
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath(kUid2)));
}

TEST_F(ClaimsTest, EveryCorruptCheckpointIsKeptUpToABound) {
  for (size_t i = 0; i < kMaxCorruptCopies + 2; ++i) {
    std::ofstream(checkpoint_, std::ios::trunc) << "garbage " << i;
    Restart();
  }
  EXPECT_EQ(CorruptCopies().size(), kMaxCorruptCopies);
  // The newest are the ones kept.
  std::string newest = ::edgefd::testing::ReadFile(CorruptCopies().back());
  EXPECT_EQ(newest, "garbage " + std::to_string(kMaxCorruptCopies + 1));
}

TEST_F(ClaimsTest, WithoutTheApiServerACorruptCheckpointStopsTheStartAndNothingIsLost) {
  AddReserved("running", kUid1, "cpu4");
  ASSERT_EQ(ErrorOf(Prepare("running", kUid1)), "");
  std::ofstream(checkpoint_, std::ios::trunc) << "{\"version\": 1, \"claims\": {";
  server_.StopListening();
  ClaimPreparer again(hw_.registry(), *api_, ResourceApi("v1"), cdi_, Checkpoint(checkpoint_),
                      kNode);
  auto s = again.Start();
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr(checkpoint_.string()));
  EXPECT_THAT(s.error().message, HasSubstr("nothing was moved or deleted"));
  EXPECT_TRUE(fs::exists(cdi_.ClaimSpecPath(kUid1)));
  EXPECT_EQ(::edgefd::testing::ReadFile(checkpoint_), "{\"version\": 1, \"claims\": {");
  EXPECT_TRUE(CorruptCopies().empty());
}

TEST_F(ClaimsTest, ACheckpointOfANewerVersionIsRefusedAndNeverErased) {
  AddReserved("running", kUid1, "cpu4");
  ASSERT_EQ(ErrorOf(Prepare("running", kUid1)), "");
  const std::string newer =
      R"({"version": 2, "checksum": "whatever", "claims": {"x": {"format": "new"}}})";
  std::ofstream(checkpoint_, std::ios::trunc) << newer;
  ClaimPreparer again(hw_.registry(), *api_, ResourceApi("v1"), cdi_, Checkpoint(checkpoint_),
                      kNode);
  auto s = again.Start();
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr(checkpoint_.string()));
  EXPECT_THAT(s.error().message, HasSubstr("version 2 was written by a newer edgefd"));
  EXPECT_EQ(::edgefd::testing::ReadFile(checkpoint_), newer);
  EXPECT_TRUE(CorruptCopies().empty());
  EXPECT_TRUE(fs::exists(cdi_.ClaimSpecPath(kUid1)));
}

TEST_F(ClaimsTest, ACheckpointThatIsASymbolicLinkIsNotFollowed) {
  AddReserved("running", kUid1, "cpu4");
  ASSERT_EQ(ErrorOf(Prepare("running", kUid1)), "");
  // Whoever can write the directory points the checkpoint at a file of their choosing.
  const fs::path elsewhere = dir_.path() / "elsewhere.json";
  fs::rename(checkpoint_, elsewhere);
  fs::create_symlink(elsewhere, checkpoint_);
  auto loaded = Checkpoint(checkpoint_).Load();
  ASSERT_FALSE(loaded);
  EXPECT_THAT(loaded.error().message, HasSubstr("symbolic link"));
  Restart();  // rebuilt from the cluster; the link is set aside, its target left alone
  EXPECT_EQ(preparer_->Claims().size(), 1u);
  EXPECT_FALSE(fs::is_symlink(checkpoint_));
  EXPECT_TRUE(fs::exists(elsewhere));
}

// The case of issue 17: an Unprepare that came while the same claim's Prepare waited on the API
// server answered OK at once, then the Prepare recorded the claim, and its spec stayed for good.
TEST_F(ClaimsTest, AnUnprepareDuringThePrepareOfTheSameClaimWaitsAndUndoesIt) {
  AddReserved("running", kUid1, "cpu4");
  GatedTransport gated(*api_);
  ClaimPreparer preparer(hw_.registry(), gated, ResourceApi("v1"), cdi_, Checkpoint(checkpoint_),
                         kNode);
  ASSERT_TRUE(preparer.Start());
  std::thread prepare([&] {
    EXPECT_EQ(ErrorOf(preparer.Prepare({"default", kUid1, "running"})), "");
  });
  ASSERT_TRUE(gated.WaitUntilHeld());  // the Prepare waits on the API server
  std::atomic<bool> unprepared{false};
  std::thread unprepare([&] {
    EXPECT_EQ(ErrorOf(preparer.Unprepare({"default", kUid1, "running"})), "");
    unprepared = true;
  });
  ASSERT_TRUE(WaitUntil([&] { return preparer.Stats().waits == 1 || unprepared; }));
  EXPECT_FALSE(unprepared) << "the Unprepare did not wait for the Prepare";
  gated.Release();
  prepare.join();
  unprepare.join();
  EXPECT_TRUE(preparer.Claims().empty());
  EXPECT_FALSE(fs::exists(cdi_.ClaimSpecPath(kUid1)));
  EXPECT_TRUE(preparer.HeldDevices().empty());
}

TEST_F(ClaimsTest, APrepareTheKubeletGaveUpOnAsksTheApiServerNothing) {
  AddReserved("running", kUid1, "cpu4");
  const size_t before = server_.Requests().size();
  PrepareResult r = preparer_->Prepare({"default", kUid1, "running"}, [] { return true; });
  EXPECT_THAT(ErrorOf(r), HasSubstr("the kubelet gave up on the call"));
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);  // KubeletPlugin ends the call CANCELLED
  EXPECT_EQ(server_.Requests().size(), before);
  EXPECT_EQ(preparer_->Stats().abandoned, 1u);
  EXPECT_TRUE(preparer_->Claims().empty());
}

// The case of issue 17: an unknown claim UID named a file to delete, and a claim name went into
// the API path as it came (CR/LF split the request).
TEST_F(ClaimsTest, UidsNamesAndNamespacesAreCheckedBeforeTheyNameAFileOrAPath) {
  const fs::path victim = dir_.path() / "victim.json";
  std::ofstream(victim) << "{}";
  // edgefd.io-device_<uid>.json in cdi/: "../victim" would reach dir/victim.json.
  EXPECT_THAT(ErrorOf(preparer_->Unprepare({"default", "../victim", "x"})),
              HasSubstr("not a Kubernetes"));
  EXPECT_THAT(ErrorOf(preparer_->Unprepare({"default", "../../victim", "x"})),
              HasSubstr("not a Kubernetes"));
  EXPECT_TRUE(fs::exists(victim));
  const size_t before = server_.Requests().size();
  for (const ClaimRef& bad :
       std::vector<ClaimRef>{{"default", "../victim", "x"},
                             {"default", kUid1, "x\r\nDELETE /api/v1/nodes/rock5b HTTP/1.1\r\n"},
                             {"default", kUid1, "../../../api/v1/nodes"},
                             {"default", kUid1, "a/b"},
                             {"default", kUid1, "x?watch=1"},
                             {"kube-system/../default", kUid1, "x"},
                             {"Default", kUid1, "x"},
                             {"default", kUid1, std::string("x\0y", 3)},
                             {"default", kUid1, std::string(254, 'a')}}) {
    PrepareResult r = Prepare(bad);
    EXPECT_THAT(ErrorOf(r),
                ::testing::AnyOf(HasSubstr("not a Kubernetes object UID"), HasSubstr("not a DNS")))
        << bad.name;
    if (!r) {
      EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << bad.name;
    }
  }
  EXPECT_EQ(server_.Requests().size(), before);
  EXPECT_TRUE(preparer_->Claims().empty());
}

TEST_F(ClaimsTest, ConcurrentPreparesOfManyClaimsAllLand) {
  for (int i = 0; i < 6; ++i) {
    server_.resources().AddClaim("default", "c" + std::to_string(i),
                                 "00000000-0000-4000-8000-00000000003" + std::to_string(i),
                                 {{"r", "edgefd.io", kNode, "cpu" + std::to_string(i)}});
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      EXPECT_EQ(ErrorOf(Prepare("c" + std::to_string(i),
                                "00000000-0000-4000-8000-00000000003" + std::to_string(i))),
                "");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(preparer_->Claims().size(), 6u);
  Restart();
  EXPECT_EQ(preparer_->Claims().size(), 6u);
  EXPECT_EQ(cdi_.ClaimSpecs().size(), 6u);
}

TEST_F(ClaimsTest, AVanishedHeldDeviceIsReportedInTheClaimStatusWithoutTaints) {
  server_.resources().AddClaim("default", "stick", "00000000-0000-4000-8000-000000000021",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  ASSERT_EQ(ErrorOf(Prepare("stick", "00000000-0000-4000-8000-000000000021")), "");
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
  server_.resources().AddClaim("default", "stick", "00000000-0000-4000-8000-000000000021",
                               {{"r", "edgefd.io", kNode, "movidius-ncs-1-1-2"}});
  ASSERT_EQ(ErrorOf(Prepare("stick", "00000000-0000-4000-8000-000000000021")), "");
  DeviceLossReporter reporter(hw_.registry(), *preparer_, *api_, ResourceApi("v1"), kNode,
                              [] { return true; });
  hw_.Set(DraInventory(1));
  EXPECT_TRUE(reporter.ReportOnce());
  EXPECT_EQ(server_.Count("PUT"), 0u);
}

}  // namespace
}  // namespace edgefd::dra
