// SIGTERM and SIGINT end every edgefd-pipeline command within a second, also as PID 1 (a
// pod's only process, where a signal without a handler is dropped): stages and sources end
// the stream downstream, stages and sinks remove what they listen on, `run` reports what it
// measured and leaves no ring behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/timing.h"

namespace edgefd::runtime {
namespace {

namespace fs = std::filesystem;
using testing::Child;

const std::vector<std::string> kConv = {"--model", "conv", "--width", "64", "--height", "48"};

std::vector<std::string> Pipeline(const std::string& command, std::vector<std::string> args,
                                  const std::vector<std::string>& model = kConv) {
  args.insert(args.begin(), model.begin(), model.end());
  args.insert(args.begin(), {testing::PipelineBin(), command});
  return args;
}

bool Says(Child& child, const std::string& text) {
  return child.WaitFor([&](const std::string&, const std::string& err) {
    return err.find(text) != std::string::npos;
  });
}

bool Prints(Child& child, const std::string& text) {
  return child.WaitFor([&](const std::string& out, const std::string&) {
    return out.find(text) != std::string::npos;
  });
}

// A ring name no other test, run or clone uses.
std::string Ring(const std::string& what) { return testing::UniqueName("sig-" + what); }

// Where an address lives on disk: /dev/shm/NAME or the socket's path.
fs::path OnDisk(const std::string& address) {
  if (address.rfind("shm:", 0) == 0) return fs::path("/dev/shm") / address.substr(4);
  return address.substr(5);
}

struct Variant {
  bool shm;
  bool pid1;
};

class StageSignals : public ::testing::TestWithParam<Variant> {};

TEST_P(StageSignals, StopsSendsEndOfStreamAndRemovesWhatItListensOn) {
  const Variant v = GetParam();
  if (v.pid1 && !testing::CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1)";
  testing::TempDir tmp;
  const std::string in = v.shm ? "shm:" + Ring("in") : "unix:" + tmp / "in.sock";
  const std::string out = v.shm ? "shm:" + Ring("out") : "unix:" + tmp / "out.sock";
  Child sink(Pipeline("sink", {"--listen", out, "--json", "--timeout-ms", "60000"}));
  ASSERT_TRUE(Says(sink, "sink: waiting")) << sink.err();
  std::vector<std::string> stage =
      Pipeline("stage", {"--stages", "1", "--index", "0", "--listen", in, "--next", out});
  Child child(v.pid1 ? testing::AsPid1(stage) : stage);
  ASSERT_TRUE(Says(child, "stage 0: layers")) << child.err();
  ASSERT_TRUE(fs::exists(OnDisk(in)));

  std::chrono::milliseconds took{};
  EXPECT_EQ(child.StopWithin(SIGTERM, testing::kStopDeadline, &took), 0) << child.err();
  RecordProperty("stop_ms", static_cast<int>(took.count()));
  EXPECT_FALSE(fs::exists(OnDisk(in))) << in << " left behind";
  // The end-of-stream reached the sink, which reports and exits by itself.
  ASSERT_TRUE(Prints(sink, "\"frames\":0")) << sink.err();
  EXPECT_EQ(sink.Wait(), 0) << sink.err();
}

INSTANTIATE_TEST_SUITE_P(Transports, StageSignals,
                         ::testing::Values(Variant{false, false}, Variant{false, true},
                                           Variant{true, false}, Variant{true, true}),
                         [](const auto& info) {
                           return std::string(info.param.shm ? "Shm" : "Grpc") +
                                  (info.param.pid1 ? "AsPid1" : "");
                         });

TEST(Signals, ASourceStopsAndEndsTheStreamAsPid1) {
  if (!testing::CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1)";
  const std::string ring = "shm:" + Ring("src");
  // The source's 64x48 frames are what a 130x98 model outputs (a 3x3 convolution without
  // padding, then 2x2 pooling). With any other size the ring is refused as corrupt as soon as
  // a frame arrives before the SIGTERM, which is a matter of timing (it was, under qemu).
  Child sink(Pipeline("sink", {"--listen", ring, "--json", "--timeout-ms", "60000"},
                      {"--model", "conv", "--width", "130", "--height", "98"}));
  ASSERT_TRUE(Says(sink, "sink: waiting")) << sink.err();
  Child source(
      testing::AsPid1(Pipeline("source", {"--next", ring, "--fps", "20", "--frames", "1000000"})));
  ASSERT_TRUE(Says(source, "source: 1000000 frames")) << source.err();
  std::chrono::milliseconds took{};
  EXPECT_EQ(source.StopWithin(SIGTERM, testing::kStopDeadline, &took), 0) << source.err();
  RecordProperty("stop_ms", static_cast<int>(took.count()));
  ASSERT_TRUE(Prints(sink, "\"frames\":")) << sink.err();
  EXPECT_EQ(sink.Wait(), 0) << sink.err();
  EXPECT_FALSE(fs::exists(OnDisk(ring)));  // the sink removed the ring it listened on
}

TEST(Signals, ASinkStopsAndReportsOnSigint) {
  testing::TempDir tmp;
  Child sink(Pipeline("sink", {"--listen", "unix:" + tmp / "in.sock", "--json"}));
  ASSERT_TRUE(Says(sink, "sink: waiting")) << sink.err();
  EXPECT_EQ(sink.StopWithin(SIGINT, testing::kStopDeadline), 0) << sink.err();
  EXPECT_NE(sink.out().find("\"frames\":0"), std::string::npos) << sink.out();
  EXPECT_FALSE(fs::exists(tmp.path() / "in.sock"));
}

class RunSignals : public ::testing::TestWithParam<std::string> {};

TEST_P(RunSignals, ARunStopsReportsWhatItMeasuredAndLeavesNoRing) {
  const bool pid1 = testing::CanRunAsPid1();
  std::vector<std::string> run = Pipeline(
      "run", {"--stages", "2", "--transport", GetParam(), "--frames", "1000000", "--fps", "50"});
  Child child(pid1 ? testing::AsPid1(run) : run);
  ASSERT_TRUE(Says(child, "run: conv over 2 stage(s)")) << child.err();
  // A shm run names its rings (edgefd-<pid>-<token>-<link>; the pid is 1 inside the namespace,
  // the token tells this run from any other, a parallel suite's included).
  std::string prefix;
  if (GetParam() == "shm") {
    ASSERT_TRUE(Says(child, "rings /dev/shm/")) << child.err();
    const std::string err = child.err();
    const size_t at = err.find("rings /dev/shm/") + std::string("rings /dev/shm/").size();
    const std::string first = err.substr(at, err.find_first_of(" \n", at) - at);
    ASSERT_EQ(
        first.rfind("edgefd-" + (pid1 ? std::string("1") : std::to_string(child.pid())) + "-", 0),
        0u)
        << first;
    // Stage 0 makes ring 0 as it starts.
    const auto until = std::chrono::steady_clock::now() + testing::Scaled(std::chrono::seconds(10));
    while (!fs::exists("/dev/shm/" + first) && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_TRUE(fs::exists("/dev/shm/" + first)) << first;
    prefix = first.substr(0, first.size() - 1);  // "edgefd-<pid>-<token>-"
  }
  std::chrono::milliseconds took{};
  EXPECT_EQ(child.StopWithin(SIGTERM, testing::kStopDeadline, &took), 0) << child.err();
  RecordProperty("stop_ms", static_cast<int>(took.count()));
  EXPECT_NE(child.out().find("2 stage(s) over " + GetParam()), std::string::npos) << child.out();
  if (prefix.empty()) return;  // inproc and grpc make no ring
  for (const auto& entry : fs::directory_iterator("/dev/shm")) {
    EXPECT_NE(entry.path().filename().string().rfind(prefix, 0), 0u) << entry.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, RunSignals, ::testing::Values("inproc", "shm", "grpc"));

}  // namespace
}  // namespace edgefd::runtime
