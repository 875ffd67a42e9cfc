// Stages as processes in their own network namespaces, joined by a veth pair shaped with tc
// tbf (netem is not available on these machines): the link probe sees the shaping, and a
// two-stage pipeline crosses it in int8 and delivers what float32 delivers, within int8's
// error. Speed against the plan's prediction is bench/runtime/slow_links.py's job.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/timing.h"

namespace edgefd::runtime {
namespace {

using edgefd::testing::Child;
using edgefd::testing::PipelineBin;
using edgefd::testing::RunCommand;

// The path of `tool` (ip, tc) in the usual places; "" when absent.
std::string Tool(const std::string& tool) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    if (::access((dir + tool).c_str(), X_OK) == 0) return dir + tool;
  }
  return "";
}

// Runs ip or tc (argv[0]), by path.
int Sh(std::vector<std::string> argv) {
  argv[0] = Tool(argv[0]);
  return RunCommand(argv).exit_code;
}

/// Two namespaces, A (10.199.9.1) and B (10.199.9.2), a veth pair between them shaped to
/// 20 Mbit/s both ways. Skips the test when it cannot be built (not root, no ip/tc).
class ShapedLink : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root for ip netns and tc";
    if (Tool("ip").empty() || Tool("tc").empty()) GTEST_SKIP() << "needs ip and tc (iproute2)";
    const std::string id = std::to_string(::getpid());
    a_ = "edgefd-t" + id + "-a";
    b_ = "edgefd-t" + id + "-b";
    if (Sh({"ip", "netns", "add", a_}) != 0) {
      GTEST_SKIP() << "cannot create a network namespace (ip netns add)";
    }
    ASSERT_EQ(Sh({"ip", "netns", "add", b_}), 0);
    const std::string va = "eft" + id + "a", vb = "eft" + id + "b";
    ASSERT_EQ(
        Sh({"ip", "link", "add", va, "netns", a_, "type", "veth", "peer", "name", vb, "netns", b_}),
        0);
    for (const auto& [ns, dev, ip] : {std::tuple{a_, va, kIpA}, std::tuple{b_, vb, kIpB}}) {
      ASSERT_EQ(Sh({"ip", "-n", ns, "link", "set", "lo", "up"}), 0);
      ASSERT_EQ(Sh({"ip", "-n", ns, "addr", "add", std::string(ip) + "/24", "dev", dev}), 0);
      ASSERT_EQ(Sh({"ip", "-n", ns, "link", "set", dev, "up"}), 0);
      if (Sh({"ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
              "rate", "20mbit", "burst", "131072", "latency", "100ms"}) != 0) {
        GTEST_SKIP() << "tc tbf is not available";
      }
    }
  }
  void TearDown() override {
    for (const std::string& ns : {a_, b_}) {
      if (!ns.empty() && !Tool("ip").empty()) (void)Sh({"ip", "netns", "del", ns});
    }
  }

  std::vector<std::string> In(const std::string& ns, std::vector<std::string> argv) {
    argv.insert(argv.begin(), {Tool("ip"), "netns", "exec", ns, PipelineBin()});
    return argv;
  }

  // source (A) -> stage 0 (A) -> veth in `wire` -> stage 1 (B) -> sink (B): the sink's report.
  Json RunAcross(const std::string& wire, int port) {
    const std::string id = std::to_string(::getpid()) + "-" + std::to_string(port);
    const std::vector<std::string> model = {"--model",  "conv", "--width",    "96",
                                            "--height", "64",   "--channels", "3"};
    auto cmd = [&model](std::vector<std::string> head, std::vector<std::string> tail) {
      head.insert(head.end(), model.begin(), model.end());
      head.insert(head.end(), tail.begin(), tail.end());
      return head;
    };
    const std::string link = std::string(kIpB) + ":" + std::to_string(port);
    Child sink(In(b_, cmd({"sink"}, {"--listen", "shm:eft-sink-" + id, "--policy", "block",
                                     "--timeout-ms", "60000", "--json"})));
    Child stage1(In(
        b_,
        cmd({"stage"}, {"--layers", "2:4", "--listen", "0.0.0.0:" + std::to_string(port), "--next",
                        "shm:eft-sink-" + id, "--policy", "block", "--wire-in", wire, "--quiet"})));
    Child stage0(
        In(a_, cmd({"stage"}, {"--layers", "0:2", "--listen", "shm:eft-s0-" + id, "--next", link,
                               "--policy", "block", "--wire-out", wire, "--quiet"})));
    auto source =
        RunCommand(In(a_, cmd({"source"}, {"--frames", "8", "--next", "shm:eft-s0-" + id})));
    EXPECT_EQ(source.exit_code, 0) << source.err;
    EXPECT_EQ(sink.Wait(), 0) << sink.err();
    EXPECT_EQ(stage0.Wait(), 0) << stage0.err();
    EXPECT_EQ(stage1.Wait(), 0) << stage1.err();
    auto report = ParseJson(sink.out(), "sink");
    EXPECT_TRUE(report.ok()) << sink.out() << sink.err();
    return report.ok() ? *report : Json();
  }

  static constexpr const char* kIpA = "10.199.9.1";
  static constexpr const char* kIpB = "10.199.9.2";
  std::string a_, b_;
};

TEST_F(ShapedLink, TheLinkProbeSeesTheShaping) {
  Child server(In(b_, {"probe-link", "--listen", std::string(kIpB) + ":7411", "--timeout-ms",
                       "20000", "--json"}));
  ASSERT_TRUE(server.WaitFor([](const std::string&, const std::string& err) {
    return err.find("listening") != err.npos;
  }));
  auto client = RunCommand(In(
      a_, {"probe-link", "--connect", std::string(kIpB) + ":7411", "--seconds", "0.5", "--json"}));
  ASSERT_EQ(client.exit_code, 0) << client.err;
  EXPECT_EQ(server.Wait(), 0) << server.err();
  auto j = ParseJson(client.out, "probe-link");
  ASSERT_TRUE(j.ok()) << client.out;
  const double mbps = (*j)["mbps"].get<double>();
  // tbf lets 20 Mbit/s through (a busy machine only lowers it); unshaped veths carry
  // gigabits.
  EXPECT_GT(mbps, 0);
  EXPECT_LT(mbps, 22) << "the tbf shaping did not hold";
  // A veth's MTU is Ethernet's; the segments carry 1448 bytes (1460 where TCP timestamps are
  // off), and the rate the planner takes counts each one's headers (1514 bytes a full frame).
  const int mss = (*j)["mss"].get<int>();
  if (mss == 0 && edgefd::testing::Slowdown() > 1) {
    // qemu-user passes neither TCP_INFO nor IP_MTU through: unknown, and the line rate is the
    // payload's.
    EXPECT_EQ((*j)["mtu"], 0) << client.out;
    EXPECT_NEAR((*j)["line_mbps"].get<double>(), mbps, 0.01) << client.out;
    return;
  }
  EXPECT_EQ((*j)["mtu"], 1500) << client.out;
  EXPECT_TRUE(mss == 1448 || mss == 1460) << client.out;
  EXPECT_NEAR((*j)["line_mbps"].get<double>() / mbps, 1514.0 / mss, 1e-3) << client.out;
}

TEST_F(ShapedLink, AProbeOfASilentAddressTimesOutClearly) {
  // Nothing listens in B: the SYN is answered with a reset, or, where it is dropped, the
  // connect times out. Either way a message names the address and the exit status is 1.
  auto client = RunCommand(In(a_, {"probe-link", "--connect", std::string(kIpB) + ":7412",
                                   "--seconds", "1", "--timeout-ms", "300"}));
  EXPECT_EQ(client.exit_code, 1);
  EXPECT_NE(client.err.find("probe-link " + std::string(kIpB) + ":7412"), std::string::npos)
      << client.err;
}

TEST_F(ShapedLink, AnInt8CutDeliversWhatFloat32DeliversWithinItsError) {
  const Json f32 = RunAcross("float32", 7413);
  const Json i8 = RunAcross("int8", 7414);
  const Json f16 = RunAcross("float16", 7415);
  ASSERT_EQ(f32.value("frames", 0), 8) << f32.dump();
  ASSERT_EQ(i8.value("frames", 0), 8) << i8.dump();
  ASSERT_EQ(f16.value("frames", 0), 8) << f16.dump();
  const double ref = f32["checksum"].get<double>();
  ASSERT_NE(ref, 0);
  EXPECT_NE(i8["checksum"].get<double>(), ref) << "int8 changed nothing: was it used?";
  EXPECT_NEAR(i8["checksum"].get<double>() / ref, 1.0, 0.01);
  EXPECT_NEAR(f16["checksum"].get<double>() / ref, 1.0, 0.001);
}

}  // namespace
}  // namespace edgefd::runtime
