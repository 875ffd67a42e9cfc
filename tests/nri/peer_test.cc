// edgefd-nri against the runtime side of NRI that containerd and CRI-O embed
// (github.com/containerd/nri/pkg/adaptation), driven by tools/nri-peer (built with Go when Go
// is there). The script and the promises it checks: see tools/nri-peer/main.go.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/dra_checkpoint.h"
#include "edgefd/testing/fake_pod_resources.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::nri {
namespace {

namespace fs = std::filesystem;

using ::edgefd::testing::Child;
using ::edgefd::testing::RunCommand;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One update as the peer prints it: "id=cpus".
std::vector<std::string> Updates(const Json& list) {
  std::vector<std::string> out;
  if (!list.is_array()) return out;
  for (const Json& u : list) out.push_back(u.value("id", "") + "=" + u.value("cpus", ""));
  return out;
}

class NriPeerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (RunCommand({"/bin/sh", "-c", "command -v go"}).exit_code != 0) return;
    auto build =
        RunCommand({"/bin/bash", (testing::SourceDir() / "tools/build-go-tool.sh").string(),
                    "nri-peer", Peer()});
    build_ok_ = build.exit_code == 0;
    build_log_ = build.out + build.err;
  }
  void SetUp() override {
    if (RunCommand({"/bin/sh", "-c", "command -v go"}).exit_code != 0) {
      GTEST_SKIP() << "Go is not installed";
    }
    ASSERT_TRUE(build_ok_) << "building tools/nri-peer failed:\n" << build_log_;
    fs::create_directories(dir_.path() / "root/sys/devices/system/cpu");
    dir_.Write("root/sys/devices/system/cpu/online", "0-3\n");
    // The node's allocation record: what the kubelet's device manager assigned to the peer's
    // containers (pod default/web) and the claim it prepared through DRA for holder-2.
    fs::create_directories(dir_.path() / "pod-resources");
    ASSERT_TRUE(kubelet_.Start());
    kubelet_.Assign({"default", "web", "holder-3", "edgefd.io/big-cpu", {"cpu3"}});
    kubelet_.Assign({"default", "web", "holder-1", "edgefd.io/big-cpu", {"cpu1"}});
    kubelet_.Assign({"default", "web", "partly", "edgefd.io/little-cpu", {"cpu0"}});
    kubelet_.AssignClaim({"default", "web", "holder-2", "big-core", {"cpu2"}, "edgefd.io"});
    fs::create_directories(dir_.path() / "plugins/edgefd.io");
    deviceplugin::PreparedClaim claim{"2f1c0a8e-0d4b-4a57-9a43-5b0c6c1d2e3f",
                                      "default",
                                      "big-core",
                                      {{"cpu", dir_.path().filename().string(), "cpu2", {}}},
                                      {"EDGEFD_BIG_CPUS=2"},
                                      false};
    ASSERT_TRUE(deviceplugin::DraCheckpoint(dir_.path() / "plugins/edgefd.io/checkpoint.json")
                    .Save({{claim.uid, claim}}));
  }
  static std::string Peer() { return (testing::BinaryDir() / "nri-peer").string(); }
  std::string Socket() const { return dir_ / "nri.sock"; }

  // Runs the peer; its JSON report.
  Json RunPeer(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {Peer(), "-socket", Socket(), "-timeout", "20s"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunCommand(args);
    Json report = Json::parse(r.out, nullptr, false);
    EXPECT_FALSE(report.is_discarded()) << r.out << r.err;
    EXPECT_EQ(r.exit_code, 0) << report.value("error", "") << "\n" << r.err;
    return report;
  }

  static inline bool build_ok_ = false;
  static inline std::string build_log_;
  testing::TempDir dir_;
  testing::FakePodResources kubelet_{dir_.path() / "pod-resources/kubelet.sock"};
};

TEST_F(NriPeerTest, EnforcesHeldCoresThroughTheRealRuntimeSide) {
  // The plugin first: it waits for the socket, as on a node where it starts before the runtime.
  Child plugin({EDGEFD_NRI_BIN, "--socket", Socket(), "--root", dir_ / "root", "--kubelet-dir",
                dir_.path().string(), "--metrics-addr", "none"});
  ASSERT_TRUE(plugin.started());
  Json report = RunPeer();

  // Synchronize: the holder of core 3 pinned, every other live container moved off it
  // (kube-system too), the stopped one left out.
  EXPECT_THAT(Updates(report["sync"]),
              ElementsAre("holder-3=3", "plain-running=0,1,2", "system=0,1,2"));
  // A container with EDGEFD_BIG_CPUS=1 gets exactly core 1; running ones move off it.
  EXPECT_EQ(report["create_holder"].value("cpus", ""), "1");
  // What the plugin adds to a container's creation: recorded, not judged (speed is bench/'s).
  RecordProperty("create_holder_us", std::to_string(report.value("create_holder_us", 0)));
  EXPECT_THAT(Updates(report["create_holder"]["updates"]),
              ElementsAre("plain-running=0,2", "system=0,2"));
  // A plain container is created off the held cores.
  EXPECT_EQ(report["create_plain"].value("cpus", ""), "0,2");
  EXPECT_THAT(Updates(report["create_plain"]["updates"]), IsEmpty());
  // An update that would widen the holder's cpuset (a resize) is answered with its own cores.
  EXPECT_THAT(Updates(report["update"]), ElementsAre("holder-1=1"));
  // EDGEFD_LITTLE_CPUS=0,7 on a 4-core node: pinned to the valid core 0.
  EXPECT_EQ(report["create_partly"].value("cpus", ""), "0");
  // EDGEFD_MID_CPUS=9: holds nothing, treated as any other container.
  EXPECT_EQ(report["create_bogus"].value("cpus", ""), "0,2");
  // EDGEFD_BIG_CPUS=1 in a container's own spec, with no core allocated: not pinned to the
  // core holder-1 holds, but kept off it like any other container.
  EXPECT_EQ(report["create_forged"].value("cpus", ""), "0,2");
  EXPECT_THAT(Updates(report["create_forged"]["updates"]), IsEmpty());
  // Removing the holder of core 1 gives it back, unsolicited (UpdateContainers).
  EXPECT_THAT(Updates(report["remove"]),
              ElementsAre("bogus=0,1,2", "forged=0,1,2", "plain-new=0,1,2", "plain-running=0,1,2",
                          "system=0,1,2"));
  // Stopping the holder of core 3 gives it back in the StopContainer answer.
  EXPECT_THAT(Updates(report["stop"]),
              ElementsAre("bogus=0,1,2,3", "forged=0,1,2,3", "plain-new=0,1,2,3",
                          "plain-running=0,1,2,3", "system=0,1,2,3"));
  EXPECT_THAT(plugin.err(), ::testing::Not(::testing::HasSubstr("error")));

  // The runtime restarts (a new process, the socket gone and back): the plugin reconnects on
  // its own and is synchronized again. holder-2's core comes from a prepared DRA claim.
  Json restarted = RunPeer({"-restarted"});
  EXPECT_THAT(Updates(restarted["resync"]), ElementsAre("plain-running=0,1,3"));
  EXPECT_EQ(plugin.StopWithin(SIGTERM, testing::kStopDeadline), 0) << plugin.err();
  EXPECT_THAT(plugin.err(), ::testing::HasSubstr("names core(s) 7 that are not online"));
  EXPECT_THAT(plugin.err(), ::testing::HasSubstr("forged (forged): names core(s) 1 that neither"));
}

}  // namespace
}  // namespace edgefd::nri
