// Whole pipelines over every transport, in one process (threads) and as child processes.
#include "edgefd/runtime/pipeline.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "edgefd/runtime/kernels.h"
#include "edgefd/testing/files.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

using testing::TempDir;

/// Both ends of every link of an N-stage pipeline over one transport.
struct Links {
  std::vector<std::unique_ptr<FrameWriter>> writers;
  std::vector<std::unique_ptr<FrameReader>> readers;
};

Links MakeLinks(const std::string& transport, const std::vector<Shape>& shapes, Policy policy,
                const TempDir& dir) {
  Links l;
  for (size_t k = 0; k < shapes.size(); ++k) {
    Policy p = k == 0 ? Policy::kBlock : policy;
    if (transport == "inproc") {
      MailboxPair pair = MakeInprocLink(shapes[k].Bytes(), p);
      l.writers.push_back(std::move(pair.writer));
      l.readers.push_back(std::move(pair.reader));
    } else if (transport == "shm") {
      std::string name = testing::UniqueName("pipe");
      auto r = OpenShmReader(name, shapes[k].Bytes(), p);
      auto w = OpenShmWriter(name, shapes[k].Bytes(), p);
      EXPECT_TRUE(r.ok() && w.ok());
      UnlinkShm(name);  // both ends hold the mapping; nothing is left in /dev/shm
      l.readers.push_back(std::move(*r));
      l.writers.push_back(std::move(*w));
    } else {
      auto r = ListenGrpc("unix:" + dir / ("link" + std::to_string(k) + ".sock"), shapes[k], p);
      EXPECT_TRUE(r.ok()) << r.error().message;
      auto w = ConnectGrpc((*r)->Address(), shapes[k].Bytes(), std::chrono::seconds(10));
      EXPECT_TRUE(w.ok());
      l.readers.push_back(std::move(*r));
      l.writers.push_back(std::move(*w));
    }
  }
  return l;
}

struct Threaded {
  SinkReport sink;
  std::vector<uint64_t> link_drops;
};

/// Source, N stage threads and the sink over `transport`, outputs kept.
Threaded RunThreaded(const ModelSpec& spec, int stages, const std::string& transport, Policy policy,
                     int frames, std::vector<double> delays = {}) {
  auto model = BuildModel(spec);
  EXPECT_TRUE(model.ok());
  PartitionOptions po;
  po.stages = stages;
  auto plan = Partition(*model, po);
  EXPECT_TRUE(plan.ok());
  std::vector<Shape> shapes = {model->Input()};
  for (const StagePlan& s : plan->stages) shapes.push_back(model->layers[s.last - 1].out);
  TempDir dir;
  Links links = MakeLinks(transport, shapes, policy, dir);
  std::vector<std::unique_ptr<Executor>> execs;
  for (const StagePlan& s : plan->stages) {
    auto e = MakeCpuBackend()->Compile(*model, s.first, s.last, ExecOptions{1, {}, true});
    EXPECT_TRUE(e.ok());
    execs.push_back(std::move(*e));
  }
  SourceOptions so;
  so.frames = frames;
  so.seed = spec.seed;
  SourceImages images = MakeSourceImages(model->Input(), so);
  std::vector<StageCounters> counters(stages);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { EXPECT_TRUE(RunSource(*links.writers[0], images, so).ok()); });
  for (int s = 0; s < stages; ++s) {
    threads.emplace_back([&, s] {
      StageOptions o;
      o.index = s;
      if (size_t(s) < delays.size()) o.delay_ms = delays[s];
      EXPECT_TRUE(
          RunStage(*links.readers[s], *links.writers[s + 1], *execs[s], o, counters[s]).ok());
    });
  }
  SinkOptions sink_options;
  sink_options.keep_outputs = true;
  sink_options.warmup = 0;
  // A deadline for a failing run, not a speed limit: under qemu a tiny-YOLO stage without
  // oneDNN (armhf) takes a minute per frame.
  sink_options.timeout = std::chrono::minutes(10);
  auto sink = RunSink(*links.readers[stages], sink_options);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(sink.ok()) << sink.error().message;
  Threaded out;
  out.sink = std::move(*sink);
  for (auto& r : links.readers) out.link_drops.push_back(r->Drops());
  return out;
}

/// The monolithic output for source frame `seq`.
std::vector<float> Monolithic(const ModelSpec& spec, uint64_t seq) {
  auto model = BuildModel(spec);
  auto exec =
      MakeCpuBackend()->Compile(*model, 0, int(model->layers.size()), ExecOptions{1, {}, true});
  std::vector<float> in(model->Input().Elements()), out(model->Output().Elements());
  SourceFrame(model->Input(), spec.seed, seq, SourceOptions{}.distinct, in.data());
  (*exec)->Run(in.data(), out.data());
  return out;
}

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

class EveryTransport : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryTransport, PartitionedConvEqualsMonolithicForEveryStageCount) {
  ModelSpec spec;
  spec.conv = {67, 41, 1};
  std::vector<std::vector<float>> expected;
  for (uint64_t seq = 0; seq < 4; ++seq) expected.push_back(Monolithic(spec, seq));
  for (int stages = 1; stages <= 4; ++stages) {
    Threaded run = RunThreaded(spec, stages, GetParam(), Policy::kBlock, 6);
    ASSERT_EQ(run.sink.frames, 6u) << stages << " stages";
    EXPECT_EQ(run.sink.drops, 0u);
    EXPECT_TRUE(run.sink.in_order);
    for (const auto& [seq, out] : run.sink.outputs) {
      EXPECT_LT(MaxAbsDiff(out, expected[seq % 4]), 1e-4f)
          << stages << " stages, frame " << seq << " over " << GetParam();
    }
  }
}

TEST_P(EveryTransport, PartitionedYoloTinyEqualsMonolithic) {
  ModelSpec spec;
  spec.name = "yolo-tiny";
  Threaded run = RunThreaded(spec, 2, GetParam(), Policy::kBlock, 2);
  ASSERT_EQ(run.sink.frames, 2u);
  for (const auto& [seq, out] : run.sink.outputs) {
    EXPECT_LT(MaxAbsDiff(out, Monolithic(spec, seq)), 1e-4f) << "frame " << seq;
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, EveryTransport, ::testing::Values("inproc", "shm", "grpc"));

class SlowStage : public ::testing::TestWithParam<std::string> {};

TEST_P(SlowStage, KeepsOrderAndCountsEveryDroppedFrame) {
  ModelSpec spec;
  spec.conv = {64, 48, 1};
  const int frames = 120;
  Threaded run = RunThreaded(spec, 3, GetParam(), Policy::kLatest, frames, {0, 3.0, 0});
  const SinkReport& s = run.sink;
  EXPECT_TRUE(s.in_order);
  EXPECT_EQ(s.last_seq, uint64_t(frames)) << "the newest frame always gets through";
  EXPECT_EQ(s.frames + s.drops, uint64_t(frames));
  EXPECT_GT(s.drops, 0u) << "a 3 ms stage behind a fast one must drop";
  uint64_t link_drops = 0;
  for (uint64_t d : run.link_drops) link_drops += d;
  EXPECT_EQ(link_drops, s.drops) << "drops counted at the links equal the gaps the sink saw";
  ModelSpec check = spec;
  for (const auto& [seq, out] : s.outputs) {
    EXPECT_LT(MaxAbsDiff(out, Monolithic(check, seq)), 1e-4f);
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, SlowStage, ::testing::Values("inproc", "shm", "grpc"));

using testing::RunCli;

double JsonNumber(const std::string& json, const std::string& key) {
  size_t pos = json.find("\"" + key + "\":");
  if (pos == std::string::npos) return NAN;
  return std::strtod(json.c_str() + pos + key.size() + 3, nullptr);
}

TEST(RunCommand, ChildProcessPipelinesOverShmAndGrpcMatchInProcess) {
  const std::string common =
      "run --model conv --width 96 --height 64 --stages 3 --frames 25 --policy block --json";
  int st = 0;
  std::string inproc = RunCli(common + " --transport inproc", &st);
  ASSERT_EQ(st, 0) << inproc;
  double checksum = JsonNumber(inproc, "checksum");
  ASSERT_FALSE(std::isnan(checksum)) << inproc;
  for (const char* t : {"shm", "grpc"}) {
    std::string out = RunCli(common + " --transport " + t, &st);
    ASSERT_EQ(st, 0) << out;
    EXPECT_EQ(JsonNumber(out, "frames_received"), 25) << out;
    EXPECT_EQ(JsonNumber(out, "drops"), 0) << out;
    EXPECT_NEAR(JsonNumber(out, "checksum"), checksum, 1e-6 * std::abs(checksum)) << out;
    EXPECT_GT(JsonNumber(out, "fps"), 0) << out;
    EXPECT_NE(out.find("\"stage_compute_ms\":["), std::string::npos);
  }
}

// A sink that gives up (no frame for sink_timeout) fails the run; the stages and the source,
// blocked on links nobody reads any more, are released instead of hanging the join.
TEST(RunPipelineInproc, ASinkThatGivesUpFailsTheRunInsteadOfHangingIt) {
  RunOptions o;
  o.model.conv = {64, 48, 1};
  o.stages = 2;
  o.transport = Transport::kInproc;
  o.frames = 6;
  o.warmup = 0;
  o.policy = Policy::kBlock;
  o.stage_delay_ms = {0, 1500};  // the last stage is far slower than the sink waits
  o.sink_timeout = std::chrono::milliseconds(200);
  auto start = std::chrono::steady_clock::now();
  auto r = RunPipeline(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("sink: no frame"), std::string::npos) << r.error().message;
  // Before: the source and stage 0 waited forever for consumers that had gone.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
}

// Under the block policy nothing is lost, also when the source outruns the stages with large
// frames over gRPC: the stage's memory quota must never reset a well-behaved upstream (it did,
// and 4-8 % of 720p frames were lost, before flow control was held to about one frame).
TEST(RunCommand, GrpcStagesLoseNoLargeFrameUnderTheBlockPolicy) {
  int st = 0;
  std::string out = RunCli(
      "run --model conv --width 1280 --height 720 --stages 4 --transport grpc --frames 300 "
      "--policy block --json",
      &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(JsonNumber(out, "frames_received"), 300) << out;
  EXPECT_EQ(JsonNumber(out, "drops"), 0) << out;
}

TEST(RunCommand, MonolithicReportsThroughputLatencyAndPlan) {
  int st = 0;
  std::string out = RunCli("run --model conv --width 128 --height 128 --frames 20 --json", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(JsonNumber(out, "frames_received"), 20);
  EXPECT_GT(JsonNumber(out, "latency_p50_ms"), 0);
  EXPECT_NE(out.find("\"plan\":{"), std::string::npos);
  EXPECT_NE(out.find("\"backend\":\"cpu\""), std::string::npos);
  // What the backend was built with: never a silently different build.
  const std::string onednn = OneDnnVersion();
  EXPECT_NE(out.find(onednn.empty() ? "\"onednn\":null" : "\"onednn\":\"" + onednn + "\""),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(std::string("\"kernels\":\"") + KernelIsa() + "\""), std::string::npos) << out;
}

TEST(Cli, VersionSaysWhatTheCpuBackendWasBuiltWith) {
  int st = 0;
  std::string out = RunCli("--version", &st);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(out.rfind("edgefd-pipeline ", 0), 0u) << out;
  const std::string onednn = OneDnnVersion();
  EXPECT_NE(out.find(onednn.empty() ? "cpu backend: built without oneDNN" : "oneDNN " + onednn),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(std::string("loops for ") + KernelIsa()), std::string::npos) << out;
}

TEST(Cli, PartitionPrintsThePlan) {
  int st = 0;
  std::string out = RunCli("partition --model yolo-tiny --stages 2", &st);
  EXPECT_EQ(st, 0);
  EXPECT_NE(out.find("4.844 GFLOP"), std::string::npos) << out;
  EXPECT_NE(out.find("conv1.."), std::string::npos) << out;
  EXPECT_NE(out.find("bottleneck"), std::string::npos) << out;
}

TEST(Cli, BadInputNamesItAndFails) {
  int st = 0;
  std::string out = RunCli("run --model conv --stages 9 --frames 2", &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("--stages 9"), std::string::npos) << out;
  out = RunCli("run --model resnet", &st);
  EXPECT_EQ(st, 2);
  EXPECT_NE(out.find("resnet"), std::string::npos) << out;
  out = RunCli("run --model conv --frmes 3", &st);
  EXPECT_EQ(st, 2);
  EXPECT_NE(out.find("--frmes"), std::string::npos) << out;
  out = RunCli("run --model conv --width 64 --height 64 --weights /nonexistent/w.bin", &st);
  EXPECT_NE(st, 0);
  EXPECT_NE(out.find("/nonexistent/w.bin"), std::string::npos) << out;
  out = RunCli("stage --model conv --listen shm:x", &st);
  EXPECT_EQ(st, 2);
  EXPECT_NE(out.find("--next"), std::string::npos) << out;
}

// Integer options are 64-bit on every target (`long` is 32 bits on armhf).
TEST(Cli, SeedTakesItsWhole40BitRange) {
  int st = 0;
  std::string out =
      RunCli("partition --model conv --width 64 --height 64 --seed 1099511627776", &st);
  EXPECT_EQ(st, 0) << out;
  out = RunCli("partition --model conv --width 64 --height 64 --seed 1099511627777", &st);
  EXPECT_EQ(st, 2) << out;
  EXPECT_NE(out.find("--seed"), std::string::npos) << out;
  EXPECT_NE(out.find("1099511627777"), std::string::npos) << out;
  out = RunCli("partition --model conv --seed 99999999999999999999999", &st);
  EXPECT_EQ(st, 2) << out;
}

TEST(Cli, EveryCommandHasHelpAndExitCodesMeanWhatTheyMeanElsewhere) {
  int st = -1;
  for (const char* command : {"run", "stage", "source", "sink", "partition"}) {
    std::string out = RunCli(std::string(command) + " --help", &st);
    EXPECT_EQ(st, 0) << command << ": " << out;
    EXPECT_NE(out.find(std::string("Usage: edgefd-pipeline ") + command), std::string::npos) << out;
    EXPECT_NE(out.find("--model"), std::string::npos) << out;
  }
  std::string out = RunCli("", &st);
  EXPECT_EQ(st, 2) << out;  // no command: bad usage
  out = RunCli("run --model conv --width 64 --height 64 --weights /nonexistent/w.bin", &st);
  EXPECT_EQ(st, 2) << out;  // a weights file that cannot be read is bad input, named
  EXPECT_NE(out.find("/nonexistent/w.bin"), std::string::npos) << out;
  // Well-formed input, failed job: a sink whose upstream never comes.
  TempDir dir;
  out = RunCli("sink --model conv --width 64 --height 64 --listen unix:" + dir / "in.sock" +
                   " --timeout-ms 50",
               &st);
  EXPECT_EQ(st, 1) << out;
  EXPECT_NE(out.find("no frame on"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgefd::runtime

namespace edgefd::runtime {
namespace {

// A frame as it reaches the sink after `stages` stages, each having measured its own times.
FrameMeta ArrivedFrame(uint64_t seq, int64_t t_source_ns, uint64_t clock, int stages) {
  FrameMeta m;
  m.seq = seq;
  m.shape = {1, 1, 1};
  m.t_source_ns = t_source_ns;
  m.source_clock = clock;
  m.source_send_ns = 1000000;  // 1 ms
  m.stage_count = uint32_t(stages);
  for (int s = 0; s < stages; ++s) m.stages[s] = {3000000, 2000000 * (s + 1), 1000000};
  return m;
}

// A sink's bookkeeping without a warm-up, fed frames that carry their stages' own times.
class SinkAccumulatorTest : public ::testing::Test {
 protected:
  static SinkOptions NoWarmup() {
    SinkOptions o;
    o.warmup = 0;
    return o;
  }
  void Arrive(uint64_t seq, int64_t t_source_ns, uint64_t clock, int stages, int64_t now_ns) {
    acc_.Add(ArrivedFrame(seq, t_source_ns, clock, stages), &pixel_, now_ns);
  }

  SinkAccumulator acc_{NoWarmup()};
  const float pixel_ = 1;
  const int64_t now_ = NowNs();
};

TEST_F(SinkAccumulatorTest, NeverSubtractsTheClockOfASourceElsewhere) {
  // The source's clock is an hour ahead of the sink's (another board, another time namespace).
  for (uint64_t seq = 1; seq <= 5; ++seq) {
    Arrive(seq, now_ + 3600 * 1000000000LL, ClockId() + 1, 2, now_ + int64_t(seq) * 1000000);
  }
  SinkReport r = acc_.Finish();
  EXPECT_FALSE(r.latency_measured);
  EXPECT_EQ(r.latency_p50_ms, 0);
  EXPECT_NE(r.latency_note.find("another clock"), std::string::npos);
  // Each stage's times are its own durations, whatever the clocks.
  ASSERT_EQ(r.stage_compute_ms.size(), 2u);
  EXPECT_DOUBLE_EQ(r.stage_compute_ms[0], 2);
  EXPECT_DOUBLE_EQ(r.stage_compute_ms[1], 4);
  EXPECT_DOUBLE_EQ(r.stage_comm_ms[0], 1);  // the source's send
  EXPECT_DOUBLE_EQ(r.stage_wait_ms[1], 3);
  EXPECT_DOUBLE_EQ(r.sink_comm_ms, 1);
  EXPECT_DOUBLE_EQ(r.ccr, 3.0 / 6.0);
}

TEST_F(SinkAccumulatorTest, MeasuresLatencyWhenTheSourceSharesItsClock) {
  for (uint64_t seq = 1; seq <= 5; ++seq) Arrive(seq, now_, ClockId(), 1, now_ + 7000000);
  SinkReport r = acc_.Snapshot();
  EXPECT_TRUE(r.latency_measured);
  EXPECT_DOUBLE_EQ(r.latency_p50_ms, 7);
  EXPECT_EQ(r.latency_note, "");
  // One frame from elsewhere and the latency no longer means anything: it is withdrawn.
  Arrive(6, now_, ClockId() ^ 1, 1, now_ + 8000000);
  EXPECT_FALSE(acc_.Snapshot().latency_measured);
}

TEST_F(SinkAccumulatorTest, KeepsABoundedWindowOfAnEndlessRun) {
  for (uint64_t seq = 1; seq <= SinkAccumulator::kWindow + 10; ++seq) {
    // The first frames took long; the window holds only the recent, fast ones.
    const int64_t latency = seq <= 10 ? 1000000000 : 1000000;
    Arrive(seq, now_ + int64_t(seq), ClockId(), 1, now_ + int64_t(seq) + latency);
  }
  SinkReport r = acc_.Finish();
  EXPECT_EQ(r.frames, SinkAccumulator::kWindow + 10);
  EXPECT_DOUBLE_EQ(r.latency_p99_ms, 1);
}

TEST(Metrics, TheSinkServesItsFiguresWithLatencyOnlyWhereMeasured) {
  SinkReport r;
  r.frames = 12;
  r.stage_compute_ms = {2, 4};
  r.stage_comm_ms = {1, 1};
  r.stage_wait_ms = {0, 3};
  r.latency_measured = false;
  r.latency_p50_ms = -3599998;  // what a subtraction across clocks gave
  std::string text = SinkPrometheusText(r);
  EXPECT_NE(text.find("edgefd_pipeline_sink_frames_total 12"), std::string::npos) << text;
  EXPECT_NE(text.find("edgefd_pipeline_sink_latency_measured 0"), std::string::npos) << text;
  EXPECT_EQ(text.find("edgefd_pipeline_sink_latency_ms"), std::string::npos) << text;
  EXPECT_NE(text.find("edgefd_pipeline_sink_stage_compute_ms{stage=\"1\"} 4"), std::string::npos)
      << text;
  r.latency_measured = true;
  r.latency_p50_ms = 7;
  text = SinkPrometheusText(r);
  EXPECT_NE(text.find("edgefd_pipeline_sink_latency_ms{quantile=\"0.5\"} 7"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace edgefd::runtime
