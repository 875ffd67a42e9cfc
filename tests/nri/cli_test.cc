// edgefd-nri as a user runs it: flags, refusals, the node without NRI, SIGTERM.
#include "edgefd/nri/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "edgefd/testing/files.h"
#include "edgefd/testing/http.h"
#include "edgefd/testing/process.h"

namespace edgefd::nri {
namespace {

namespace fs = std::filesystem;
using ::edgefd::testing::Child;
using ::edgefd::testing::RunCommand;
using ::edgefd::testing::TempDir;
using ::testing::HasSubstr;

// A node: host /sys with four online cores, a kubelet directory, a socket directory.
class NriCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() / "root/sys/devices/system/cpu");
    dir_.Write("root/sys/devices/system/cpu/online", "0-3\n");
    fs::create_directories(dir_.path() / "kubelet");
    fs::create_directories(dir_.path() / "run");
  }
  std::vector<std::string> Args(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {EDGEFD_NRI_BIN,   "--socket",       dir_ / "run/nri.sock",
                                     "--root",         dir_ / "root",    "--kubelet-dir",
                                     dir_ / "kubelet", "--metrics-addr", "none"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  static uint16_t Port(const Child& child) {
    return static_cast<uint16_t>(std::stoi(child.err().substr(child.err().find("(port ") + 6)));
  }

  TempDir dir_;
};

TEST_F(NriCliTest, HelpNamesTheFlagsAndVersionAnswers) {
  auto help = RunCommand({EDGEFD_NRI_BIN, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--socket", "--policy", "--root", "--kubelet-dir", "--plugin-name",
                           "--plugin-index", "--metrics-addr"}) {
    EXPECT_THAT(help.out, HasSubstr(flag));
  }
  EXPECT_EQ(RunCommand({EDGEFD_NRI_BIN, "--version"}).exit_code, 0);
}

TEST_F(NriCliTest, BadFlagsAreUsageErrors) {
  auto policy = RunCommand(Args({"--policy", "greedy"}));
  EXPECT_EQ(policy.exit_code, 2);
  EXPECT_THAT(policy.err, HasSubstr("greedy"));
  auto index = RunCommand(Args({"--plugin-index", "7"}));
  EXPECT_EQ(index.exit_code, 2);
  EXPECT_THAT(index.err, HasSubstr("two-digit"));
}

TEST_F(NriCliTest, RefusesToFightTheKubeletsStaticCpuManager) {
  dir_.Write("kubelet/cpu_manager_state",
             R"({"policyName":"static","defaultCpuSet":"0-3","checksum":1})");
  for (const char* policy : {"exclusive", "shared"}) {
    auto r = RunCommand(Args({"--policy", policy}));
    EXPECT_EQ(r.exit_code, 2) << policy;
    EXPECT_THAT(r.err, HasSubstr("static policy"));
    EXPECT_THAT(r.err, HasSubstr("cpu_manager_state"));
  }
}

TEST(CheckCpuManager, TheNonePolicyOrNoStateFileIsFineAGarbledOneIsNot) {
  TempDir dir;
  EXPECT_TRUE(CheckCpuManager(dir.path()).ok());
  dir.Write("cpu_manager_state", R"({"policyName":"none","defaultCpuSet":"","checksum":1})");
  EXPECT_TRUE(CheckCpuManager(dir.path()).ok());
  dir.Write("cpu_manager_state", "{not json");
  EXPECT_FALSE(CheckCpuManager(dir.path()).ok());
}

TEST_F(NriCliTest, WithoutOnlineCoresItRefusesToGuess) {
  fs::remove(dir_.path() / "root/sys/devices/system/cpu/online");
  auto r = RunCommand(Args());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("sys/devices/system/cpu/online"));
}

TEST_F(NriCliTest, WithoutNriItSaysSoOnceServesMetricsAndStopsOnSigterm) {
  Child child(Args({"--metrics-addr", "127.0.0.1:0", "--log-level", "debug"}));
  ASSERT_TRUE(child.started());
  // Two retries logged at debug level: the warning must not have come again meanwhile.
  ASSERT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
    const size_t retry = err.find("still unavailable");
    return err.find("(port ") != std::string::npos && retry != std::string::npos &&
           err.find("still unavailable", retry + 1) != std::string::npos;
  })) << child.err();
  const uint16_t port = Port(child);
  const std::string metrics = testing::HttpGet(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("edgefd_nri_connected 0"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_nri_online_cpus 4"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_nri_policy_info{policy=\"exclusive\"} 1"));
  // No NRI is a state the node may stay in: ready, and the metric says the rest.
  EXPECT_THAT(testing::HttpGet(port, "/readyz"), HasSubstr("HTTP/1.1 200"));
  std::chrono::milliseconds took{0};
  EXPECT_EQ(child.StopWithin(SIGTERM, testing::kStopDeadline, &took), 0) << child.err();
  size_t count = 0;
  for (size_t at = child.err().find("advice only"); at != std::string::npos;
       at = child.err().find("advice only", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u) << child.err();
}

TEST_F(NriCliTest, AStaleSocketMakesItNotReady) {
  // A socket file nobody listens on (a runtime that crashed): connecting fails, and /readyz
  // says the plugin is not synchronized with the runtime the socket promises.
  dir_.Write("run/nri.sock", "");
  Child child(Args({"--metrics-addr", "127.0.0.1:0"}));
  ASSERT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
    return err.find("(port ") != std::string::npos && err.find("advice only") != std::string::npos;
  })) << child.err();
  const std::string ready = testing::HttpGet(Port(child), "/readyz");
  EXPECT_THAT(ready, HasSubstr("503"));
  EXPECT_THAT(ready, HasSubstr("not synchronized"));
}

TEST_F(NriCliTest, StopsOnSigtermAsPid1) {
  if (!testing::CanRunAsPid1()) GTEST_SKIP() << "cannot run a program as PID 1 here";
  Child child(testing::AsPid1(Args()));
  ASSERT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
    return err.find("advice only") != std::string::npos;
  })) << child.err();
  EXPECT_EQ(child.StopWithin(SIGTERM, testing::kStopDeadline), 0) << child.err();
}

}  // namespace
}  // namespace edgefd::nri
