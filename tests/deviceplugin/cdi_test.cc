// CDI specs: what they hold, how they are written, and that the CDI project's own library
// (what container runtimes use) accepts them and injects what edgefd promises.
#include "edgefd/deviceplugin/cdi.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/allocate.h"
#include "edgefd/deviceplugin/service.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::deviceplugin {
namespace {

namespace fs = std::filesystem;
using ::testing::Contains;
using testing::DraInventory;
using ::testing::ElementsAre;
using ::testing::IsSupersetOf;
using testing::TempDir;

// A node with two sticks whose device nodes exist here, so a runtime could really inject them.
Inventory NodeWithSticks() {
  Inventory inv = DraInventory(2);
  inv.devices[0].serial = "KL 1234$(x)";  // hardware strings are untrusted
  inv.devices[0].driver.clear();
  inv.devices[1].devnodes = {"/dev/zero"};
  inv.devices[1].driver.clear();
  return inv;
}

const CdiDevice* Find(const std::vector<CdiDevice>& devices, const std::string& name) {
  for (const CdiDevice& d : devices) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

TEST(CdiSpec, CommonSpecHasEveryDeviceWithNodesAndMetadata) {
  auto devices = CommonCdiDevices(ResourcesFromInventory(NodeWithSticks()));
  ASSERT_EQ(devices.size(), 8u);  // six cores, two sticks; the camera is no resource
  const CdiDevice* stick = Find(devices, "movidius-ncs-1-1-1");
  ASSERT_NE(stick, nullptr);
  EXPECT_THAT(stick->devnodes, ElementsAre("/dev/null"));
  EXPECT_THAT(stick->env, ElementsAre("EDGEFD_MOVIDIUS_NCS_1_1_1_STABLE_ID=1-1.1",
                                      "EDGEFD_MOVIDIUS_NCS_1_1_1_VENDOR_ID=03e7",
                                      "EDGEFD_MOVIDIUS_NCS_1_1_1_PRODUCT_ID=2485",
                                      // Hardware strings are untrusted: no shell syntax gets in.
                                      "EDGEFD_MOVIDIUS_NCS_1_1_1_SERIAL=KL-1234--x-",
                                      "EDGEFD_MOVIDIUS_NCS_1_1_1_NUMA_NODE=0"));
  const CdiDevice* core = Find(devices, "cpu4");
  ASSERT_NE(core, nullptr);
  EXPECT_TRUE(core->devnodes.empty());
  EXPECT_THAT(core->env, ElementsAre("EDGEFD_CPU4_STABLE_ID=cpu4", "EDGEFD_CPU4_CPU=4",
                                     "EDGEFD_CPU4_CORE_CLASS=big", "EDGEFD_CPU4_MODEL=cortex-a72",
                                     "EDGEFD_CPU4_CAPACITY=1024", "EDGEFD_CPU4_MAX_MHZ=1800",
                                     "EDGEFD_CPU4_NUMA_NODE=0"));
}

TEST(CdiSpec, GoneDevicesLeaveTheCommonSpec) {
  InventoryRegistry registry(NodeWithSticks());
  Inventory one = NodeWithSticks();
  one.devices.erase(one.devices.begin() + 1);
  registry.Update(one);
  auto devices = CommonCdiDevices(AllSnapshots(registry));
  EXPECT_EQ(Find(devices, "movidius-ncs-1-1-2"), nullptr);
  EXPECT_NE(Find(devices, "movidius-ncs-1-1-1"), nullptr);
}

TEST(CdiSpec, JsonIsTheCdiFormat) {
  Json spec = Json::parse(CdiSpecJson({{"cpu4", {"A=1"}, {}}, {"x", {}, {"/dev/null"}}}));
  EXPECT_EQ(spec["cdiVersion"], "0.3.0");
  EXPECT_EQ(spec["kind"], "edgefd.io/device");
  EXPECT_EQ(spec["devices"][0], Json({{"name", "cpu4"}, {"containerEdits", {{"env", {"A=1"}}}}}));
  EXPECT_EQ(spec["devices"][1]["containerEdits"]["deviceNodes"][0],
            Json({{"path", "/dev/null"}, {"permissions", "rw"}}));
}

TEST(CdiSpecDir, WritesAtomicallyAndOnlyWhenChanged) {
  TempDir dir;
  CdiSpecDir cdi(dir.path());
  auto resources = ResourcesFromInventory(NodeWithSticks());
  ASSERT_TRUE(cdi.WriteCommon(resources));
  const fs::path path = dir.path() / "edgefd.io-device.json";
  EXPECT_EQ(cdi.CommonSpecPath(), path);
  auto inode = [&] {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return st.st_ino;
  };
  const ino_t written = inode();
  // The same devices: the file is left alone (no rewrite a runtime would have to reload);
  // other devices: a new file renamed over the old one.
  ASSERT_TRUE(cdi.WriteCommon(resources));
  EXPECT_EQ(inode(), written);
  ASSERT_TRUE(cdi.WriteCommon({}));
  EXPECT_NE(inode(), written);
  // No temporary file is left, and none was ever named *.json.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path())) names.push_back(e.path().filename());
  EXPECT_THAT(names, ElementsAre("edgefd.io-device.json"));
  EXPECT_EQ((fs::status(path).permissions() & fs::perms::others_read), fs::perms::others_read);
  // A claim spec comes and goes by UID.
  const std::string uid = "0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a21";
  ASSERT_TRUE(cdi.WriteClaim(uid, {"EDGEFD_BIG_CPUS=4,5"}));
  EXPECT_THAT(cdi.ClaimSpecs(), ElementsAre(uid));
  EXPECT_EQ(Json::parse(testing::ReadFile(cdi.ClaimSpecPath(uid)))["devices"][0]["name"],
            "claim-" + uid);
  ASSERT_TRUE(cdi.RemoveClaim(uid));
  ASSERT_TRUE(cdi.RemoveClaim(uid));  // already gone is fine
  EXPECT_TRUE(cdi.ClaimSpecs().empty());
}

// A claim UID comes from whoever reaches the DRA socket: only a Kubernetes object UID names
// a file, so no other name can be written or removed through it.
TEST(CdiSpecDir, OnlyAnObjectUidNamesAClaimSpec) {
  TempDir dir;
  const fs::path cdi_dir = dir.path() / "cdi";
  fs::create_directories(cdi_dir);
  CdiSpecDir cdi(cdi_dir);
  // A file beside the directory that a path built from the UID would reach.
  const fs::path victim = dir.path() / "victim.json";
  std::ofstream(victim) << "{}";
  ASSERT_TRUE(fs::exists(victim));
  for (const std::string& bad :
       std::vector<std::string>{"../victim", "/../../victim", "x/../../victim", "", "uid-1",
                                "0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a21/..",
                                "0B5A3C1E-8F0D-4C2A-9A57-3D0C8E4F6A21x", std::string("a\0b", 3)}) {
    EXPECT_FALSE(cdi.RemoveClaim(bad)) << bad;
    EXPECT_FALSE(cdi.WriteClaim(bad, {"X=1"})) << bad;
  }
  // "edgefd.io-device_../victim.json" would be dir/victim.json.
  EXPECT_FALSE(cdi.RemoveClaim("../../victim"));
  EXPECT_TRUE(fs::exists(victim));
  EXPECT_TRUE(IsObjectUid("0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a21"));
  EXPECT_TRUE(IsObjectUid("0B5A3C1E-8F0D-4C2A-9A57-3D0C8E4F6A21"));
  EXPECT_FALSE(IsObjectUid("0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a2"));
  EXPECT_FALSE(IsObjectUid("0b5a3c1e_8f0d_4c2a_9a57_3d0c8e4f6a21"));
  // Files whose name holds no UID are not edgefd's claims.
  std::ofstream(cdi_dir / "edgefd.io-device_notauid.json") << "{}";
  EXPECT_TRUE(cdi.ClaimSpecs().empty());
}

TEST(CdiSpecDir, AnUnwritableDirectoryIsAnErrorNamingIt) {
  CdiSpecDir cdi("/nonexistent/cdi");
  auto s = cdi.WriteCommon({});
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, ::testing::HasSubstr("/nonexistent/cdi/edgefd.io-device.json"));
}

TEST(CdiSpecFeed, FollowsTheRegistry) {
  TempDir dir;
  CdiSpecDir cdi(dir.path());
  InventoryRegistry registry(NodeWithSticks());
  CdiSpecFeed feed(registry, cdi);
  ASSERT_TRUE(feed.Start());
  EXPECT_NE(testing::ReadFile(cdi.CommonSpecPath()).find("movidius-ncs-1-1-2"), std::string::npos);
  Inventory one = NodeWithSticks();
  one.devices.erase(one.devices.begin() + 1);
  registry.Update(one);  // listeners run before Update returns
  EXPECT_EQ(testing::ReadFile(cdi.CommonSpecPath()).find("movidius-ncs-1-1-2"), std::string::npos);
}

TEST(CdiAllocate, NamesTheCdiDevicesAndKeepsEnvironmentAndDeviceSpecs) {
  auto resources = ResourcesFromInventory(NodeWithSticks());
  const ResourceSnapshot& ncs = resources.back();
  ASSERT_EQ(ncs.name, "movidius-ncs");
  v1beta1::ContainerAllocateRequest request;
  request.add_devices_ids("1-1.2");
  request.add_devices_ids("1-1.1");
  v1beta1::ContainerAllocateResponse with, without;
  ASSERT_TRUE(AllocateContainer(ncs, request, with, /*cdi=*/true).ok());
  ASSERT_TRUE(AllocateContainer(ncs, request, without).ok());
  ASSERT_EQ(with.cdi_devices_size(), 2);
  EXPECT_EQ(with.cdi_devices(0).name(), "edgefd.io/device=movidius-ncs-1-1-1");
  EXPECT_EQ(with.cdi_devices(1).name(), "edgefd.io/device=movidius-ncs-1-1-2");
  EXPECT_EQ(without.cdi_devices_size(), 0);
  // Everything else is the same answer: env and DeviceSpecs stay for runtimes without CDI.
  using Envs = std::map<std::string, std::string>;
  EXPECT_EQ(Envs(with.envs().begin(), with.envs().end()),
            Envs(without.envs().begin(), without.envs().end()));
  EXPECT_EQ(without.envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.1,1-1.2");
  ASSERT_EQ(with.devices_size(), 2);
  ASSERT_EQ(without.devices_size(), 2);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(with.devices(i).SerializeAsString(), without.devices(i).SerializeAsString());
  }
}

// ---- The CDI project's validator (tools/cdi-validate, built with Go when Go is there) ----

// Runs `command` with sh: its status, stdout and stderr together (for messages), and stdout
// alone (what the validator prints as JSON).
struct ShellResult {
  int code = -1;
  std::string out;
  std::string stdout_only;
};

ShellResult Shell(const std::string& command) {
  testing::CommandResult r = testing::RunCommand({"/bin/sh", "-c", command});
  return {r.exit_code, r.out + r.err, r.out};
}

class CdiValidator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (Shell("command -v go").code != 0) return;
    ShellResult build = Shell("bash " + (testing::SourceDir() / "tools/build-go-tool.sh").string() +
                              " cdi-validate " + Validator());
    build_ok_ = build.code == 0;
    build_log_ = build.out;
  }
  void SetUp() override {
    if (Shell("command -v go").code != 0) GTEST_SKIP() << "Go is not installed";
    ASSERT_TRUE(build_ok_) << "building tools/cdi-validate failed:\n" << build_log_;
  }
  static std::string Validator() { return (testing::BinaryDir() / "cdi-validate").string(); }

  static inline bool build_ok_ = false;
  static inline std::string build_log_;
  TempDir dir_;
};

TEST_F(CdiValidator, OurSpecsPassAndInjectWhatWePromise) {
  CdiSpecDir cdi(dir_.path());
  ASSERT_TRUE(cdi.WriteCommon(ResourcesFromInventory(NodeWithSticks())));
  ASSERT_TRUE(cdi.WriteClaim("6f0e3c1a-2b4d-4e8f-9a10-b2c3d4e5f607",
                             {"EDGEFD_BIG_CPUS=4,5", "EDGEFD_MOVIDIUS_NCS_DEVICES=1-1.1"}));
  // What the kubelet hands the runtime for a claim of two big cores and a stick.
  ShellResult r =
      Shell(Validator() + " " + dir_.path().string() +
            " edgefd.io/device=cpu4 edgefd.io/device=cpu5 edgefd.io/device=movidius-ncs-1-1-1"
            " edgefd.io/device=claim-6f0e3c1a-2b4d-4e8f-9a10-b2c3d4e5f607");
  ASSERT_EQ(r.code, 0) << r.out;
  ASSERT_NE(r.stdout_only.find('{'), std::string::npos) << r.out;
  Json injected = Json::parse(r.stdout_only.substr(r.stdout_only.find('{')), nullptr, false);
  ASSERT_FALSE(injected.is_discarded()) << "the validator's stdout is not JSON:\n" << r.out;
  auto env = injected["env"].get<std::vector<std::string>>();
  EXPECT_THAT(env, IsSupersetOf({"EDGEFD_BIG_CPUS=4,5", "EDGEFD_MOVIDIUS_NCS_DEVICES=1-1.1",
                                 "EDGEFD_CPU4_CORE_CLASS=big", "EDGEFD_CPU5_CAPACITY=1024",
                                 "EDGEFD_MOVIDIUS_NCS_1_1_1_STABLE_ID=1-1.1"}));
  EXPECT_THAT(injected["devices"].get<std::vector<std::string>>(), ElementsAre("/dev/null"));
}

TEST_F(CdiValidator, RejectsWhatARuntimeWouldReject) {
  // The validator can fail: a device name with a space and an env entry without '='.
  testing::WriteFile(dir_.path() / "bad.json",
                     R"({"cdiVersion":"0.3.0","kind":"edgefd.io/device","devices":[)"
                     R"({"name":"bad name","containerEdits":{"env":["NOEQUALS"]}}]})");
  ShellResult r = Shell(Validator() + " " + dir_.path().string());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr("bad.json"));
  // And an unknown device cannot be injected.
  fs::remove(dir_.path() / "bad.json");
  CdiSpecDir cdi(dir_.path());
  ASSERT_TRUE(cdi.WriteCommon(ResourcesFromInventory(NodeWithSticks())));
  r = Shell(Validator() + " " + dir_.path().string() + " edgefd.io/device=cpu99");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_THAT(r.out, ::testing::HasSubstr("cpu99"));
}

TEST(AllocateDevices, OneAnswerInEdgefdsTermsWithTheKindOfEachRefusal) {
  auto resources = ResourcesFromInventory(NodeWithSticks());
  ResourceSnapshot ncs = resources.back();
  Result<ContainerAllocation> both = AllocateDevices(ncs, {"1-1.2", "1-1.1", "1-1.2"});
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_EQ(both->env.at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.1,1-1.2");
  EXPECT_EQ(both->cdi_devices, (std::vector<std::string>{"edgefd.io/device=movidius-ncs-1-1-1",
                                                         "edgefd.io/device=movidius-ncs-1-1-2"}));
  EXPECT_EQ(AllocateDevices(ncs, {}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(AllocateDevices(ncs, {"9-9"}).error().code, ErrorCode::kNotFound);
  ncs.devices[0].held_by = "claim default/cores";
  Result<ContainerAllocation> held = AllocateDevices(ncs, {ncs.devices[0].id});
  ASSERT_FALSE(held);
  EXPECT_EQ(held.error().code, ErrorCode::kFailedPrecondition);
  EXPECT_NE(held.error().message.find("claim default/cores"), std::string::npos);
  // The device plugin's answer carries the same kind as its gRPC status.
  v1beta1::ContainerAllocateRequest request;
  request.add_devices_ids(ncs.devices[0].id);
  v1beta1::ContainerAllocateResponse response;
  EXPECT_EQ(AllocateContainer(ncs, request, response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace edgefd::deviceplugin
