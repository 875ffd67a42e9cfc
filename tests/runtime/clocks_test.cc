// Stages whose monotonic clocks disagree (other machines, here other time namespaces) must
// never make the sink subtract one clock's reading from another's: every figure it reports is
// measured on one clock, and end-to-end latency only where the source shares the sink's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::runtime {
namespace {

using testing::Child;
using testing::TempDir;

// One hour, and thirty days: what two boards booted at different times look like.
constexpr int kSourceOffsetS = 3600;
constexpr int kStageOffsetS = 30 * 86400;

constexpr char kUnshare[] = "/usr/bin/unshare";

bool CanUnshareTime() {
  if (access(kUnshare, X_OK) != 0) return false;
  return testing::RunCommand({kUnshare, "--time", "--monotonic", "3600", "/bin/true"}).exit_code ==
         0;
}

// `edgefd-pipeline ARGS`, in a time namespace whose monotonic clock is `offset_s` ahead when
// offset_s > 0.
std::unique_ptr<Child> Pipeline(std::vector<std::string> args, int offset_s = 0) {
  args.insert(args.begin(), edgefd::testing::PipelineBin());
  if (offset_s > 0) {
    args.insert(args.begin(), {kUnshare, "--time", "--monotonic", std::to_string(offset_s),
                               "--boottime", std::to_string(offset_s)});
  }
  return std::make_unique<Child>(args);
}

std::vector<std::string> Conv(std::vector<std::string> rest) {
  // Frames big enough that a stage's compute is more than a rounding error beside its sends.
  std::vector<std::string> args = {"--model", "conv", "--width", "256", "--height", "192"};
  args.insert(args.end(), rest.begin(), rest.end());
  return args;
}

std::vector<std::string> With(std::string command, std::vector<std::string> rest) {
  rest.insert(rest.begin(), std::move(command));
  return rest;
}

// source -> stage 0 -> stage 1 -> sink over gRPC on unix sockets, every link blocking (so
// every frame arrives); the source and stage 0 in
// time namespaces `source_offset_s` and `stage_offset_s` ahead. Returns the sink's JSON report.
Json RunChain(int source_offset_s, int stage_offset_s) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
  auto addr = [&](const std::string& name) { return "unix:" + dir + "/" + name + ".sock"; };
  auto sink = Pipeline(With("sink", Conv({"--listen", addr("sink"), "--json", "--timeout-ms",
                                          "60000", "--policy", "block"})));
  auto stage1 =
      Pipeline(With("stage", Conv({"--stages", "2", "--index", "1", "--listen", addr("s1"),
                                   "--next", addr("sink"), "--policy", "block"})));
  auto stage0 =
      Pipeline(With("stage", Conv({"--stages", "2", "--index", "0", "--listen", addr("s0"),
                                   "--next", addr("s1"), "--policy", "block"})),
               stage_offset_s);
  auto source =
      Pipeline(With("source", Conv({"--frames", "40", "--next", addr("s0")})), source_offset_s);
  EXPECT_EQ(source->Wait(), 0) << source->err();
  EXPECT_EQ(sink->Wait(), 0) << sink->err();
  const size_t brace = sink->out().find('{');
  if (brace == std::string::npos) {
    ADD_FAILURE() << "no JSON report from the sink: " << sink->out() << sink->err();
    return Json::object();
  }
  Json report = ParseJsonOrNull(sink->out().substr(brace));
  if (report.is_null()) ADD_FAILURE() << "unparsable report: " << sink->out();
  return report;
}

// What every report must hold, whatever the clocks: durations, never differences of clocks.
void ExpectSaneFigures(const Json& r) {
  ASSERT_TRUE(r.is_object());
  EXPECT_GE(r.value("frames", 0), 30);
  const double ccr = r.value("ccr", -1.0);
  EXPECT_GE(ccr, 0) << r.dump();
  EXPECT_LT(ccr, 10000) << r.dump();
  for (const char* key : {"stage_compute_ms", "stage_comm_ms", "stage_wait_ms"}) {
    ASSERT_TRUE(r.contains(key) && r[key].is_array()) << key << " missing: " << r.dump();
    ASSERT_EQ(r[key].size(), 2u) << key << ": " << r.dump();
    for (const Json& v : r[key]) {
      EXPECT_GE(v.get<double>(), 0) << key << ": " << r.dump();
      EXPECT_LT(v.get<double>(), 60000) << key << ": " << r.dump();
    }
  }
}

TEST(Clocks, StagesAnHourAndAMonthAheadGiveNoNegativeOrAbsurdFigures) {
  if (!CanUnshareTime()) GTEST_SKIP() << "unshare --time is not permitted here (needs root)";
  const Json r = RunChain(kSourceOffsetS, kStageOffsetS);
  ExpectSaneFigures(r);
  // The source's clock is not the sink's: latency cannot be measured, and the report says so.
  EXPECT_TRUE(r.contains("latency_p50_ms") && r["latency_p50_ms"].is_null()) << r.dump();
  EXPECT_TRUE(r.contains("latency_p99_ms") && r["latency_p99_ms"].is_null()) << r.dump();
  EXPECT_NE(r.value("latency", "").find("another clock"), std::string::npos) << r.dump();
}

TEST(Clocks, OnOneClockTheSinkReportsEndToEndLatency) {
  const Json r = RunChain(0, 0);
  ExpectSaneFigures(r);
  ASSERT_TRUE(r.contains("latency_p50_ms") && r["latency_p50_ms"].is_number()) << r.dump();
  EXPECT_GT(r["latency_p50_ms"].get<double>(), 0) << r.dump();
  EXPECT_LT(r["latency_p99_ms"].get<double>(), 60000) << r.dump();
}

TEST(Clocks, OnlyTheSourceNeedsTheSinksClockForLatency) {
  if (!CanUnshareTime()) GTEST_SKIP() << "unshare --time is not permitted here (needs root)";
  // A stage elsewhere measures its own durations; the source and sink share a clock.
  const Json r = RunChain(0, kStageOffsetS);
  ExpectSaneFigures(r);
  ASSERT_TRUE(r["latency_p50_ms"].is_number()) << r.dump();
  EXPECT_GT(r["latency_p50_ms"].get<double>(), 0) << r.dump();
  EXPECT_LT(r["latency_p99_ms"].get<double>(), 60000) << r.dump();
}

}  // namespace
}  // namespace edgefd::runtime
