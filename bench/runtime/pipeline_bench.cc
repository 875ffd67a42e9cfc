// Reproduces the thesis table on this machine: the conv pipeline (3x3 conv → ReLU → 2x2 pool)
// monolithic and in 2/3/4 stages over every transport at 128², 256², 512², 1024² and 1280x720,
// and tiny-YOLO monolithic vs 2 stages. Prints a table, or one JSON report with --json.
// First it measures this machine's FMA peak and memcpy bandwidth, and quotes the figures as
// ratios of them (machines of one kind differ by 2x): tiny-YOLO's GFLOP/s over the FMA peak,
// conv's frame traffic (input + output bytes per second) over memcpy bandwidth.
//
//   pipeline_bench [--quick] [--monolithic] [--json] [--policy block|latest]
//                  [--pipeline-bin PATH]
//   --monolithic: only the monolithic rows (conv at each size, tiny-YOLO), for A/B runs
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/sink_report_json.h"
#include "edgefd/runtime/threads.h"
#include "edgefd/testing/paths.h"
#include "machine_peak.h"

extern char** environ;

namespace {

using edgefd::runtime::Policy;
using edgefd::runtime::RunOptions;
using edgefd::runtime::RunPipeline;

struct Row {
  std::string model;
  int width, height, stages;
  std::string transport;
  int frames;
  edgefd::runtime::RunReport report;
  std::string error;
};

// DESIGN.md targets on 2 cores (720p f32 between stages).
// fps: the absolute Zen 5 figure; of_peak: the ratio of the machine's peak that counts
// (DESIGN.md): tiny-YOLO's GFLOP/s over the FMA peak.
struct Target {
  const char* what;
  std::string model;
  int width, stages;
  std::string transport;
  double fps;
  double of_peak;
};
const Target kTargets[] = {
    {"conv 720p monolithic", "conv", 1280, 1, "inproc", 5000, 0},
    {"conv 720p 4-stage gRPC", "conv", 1280, 4, "grpc", 200, 0},
    {"conv 720p 4-stage shm", "conv", 1280, 4, "shm", 1000, 0},
    {"tiny-YOLO monolithic", "yolo-tiny", 448, 1, "inproc", 55, 0.70},
};

// Useful work per frame: GFLOP for tiny-YOLO, bytes in and out of the fused conv kernel.
double GflopPerFrame(const Row& r) {
  if (r.model != "yolo-tiny") return 0;
  static const double gflop = [] {
    edgefd::runtime::Model m = edgefd::runtime::MakeYoloTiny();
    return m.Flops(0, int(m.layers.size())) / 1e9;
  }();
  return gflop;
}
double FrameBytes(const Row& r) {
  if (r.model != "conv") return 0;
  double out = double((r.width - 2) / 2) * ((r.height - 2) / 2);
  return 4.0 * (double(r.width) * r.height + out);
}
double OfFmaPeak(const Row& r, const edgefd::bench::MachinePeak& m) {
  return GflopPerFrame(r) * r.report.sink.fps / m.fma_gflops;
}
double OfMemcpy(const Row& r, const edgefd::bench::MachinePeak& m) {
  return FrameBytes(r) * r.report.sink.fps / (m.memcpy_gbps * 1e9);
}

}  // namespace

int main(int argc, char** argv) {
  // The in-process runs wait the way edgefd-pipeline's threads do (it may re-run this program).
  edgefd::runtime::DefaultToPassiveWait(argv);
  bool quick = false, json = false, monolithic = false;
  Policy policy = Policy::kBlock;
  std::string bin = edgefd::testing::PipelineBin();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--monolithic") {
      monolithic = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--policy" && i + 1 < argc) {
      policy = std::strcmp(argv[++i], "latest") == 0 ? Policy::kLatest : Policy::kBlock;
    } else if (a == "--pipeline-bin" && i + 1 < argc) {
      bin = argv[++i];
    } else {
      std::fprintf(
          stderr,
          "usage: pipeline_bench [--quick] [--monolithic] [--json] [--policy block|latest] "
          "[--pipeline-bin PATH]\n");
      return 2;
    }
  }
  auto alloc = edgefd::runtime::ReadAllocation(environ);
  if (!alloc) {
    std::fprintf(stderr, "pipeline_bench: %s\n", alloc.error().message.c_str());
    return 2;
  }
  const edgefd::bench::MachinePeak peak = edgefd::bench::MeasureMachinePeak();
  std::fprintf(
      stderr,
      "machine: FMA peak %.1f GFLOP/s (%s, %d threads), memcpy %.1f GB/s; runtime "
      "loops for %s, oneDNN %s\n",
      peak.fma_gflops, peak.fma_isa.c_str(), peak.threads, peak.memcpy_gbps,
      edgefd::runtime::KernelIsa(),
      edgefd::runtime::OneDnnVersion().empty() ? "none" : edgefd::runtime::OneDnnVersion().c_str());
  std::vector<std::pair<int, int>> sizes = {
      {128, 128}, {256, 256}, {512, 512}, {1024, 1024}, {1280, 720}};
  std::vector<int> stage_counts = {2, 3, 4};
  std::vector<std::string> transports = {"inproc", "shm", "grpc"};
  if (quick) {
    sizes = {{256, 256}, {1280, 720}};
    stage_counts = {4};
  }
  if (monolithic) stage_counts.clear();
  std::vector<Row> rows;
  auto add = [&](const std::string& model, int w, int h, int stages, const std::string& t,
                 int frames) {
    Row r{model, w, h, stages, t, frames, {}, {}};
    RunOptions o;
    o.model.name = model;
    o.model.conv = {w, h, 1};
    o.stages = stages;
    o.transport = *edgefd::runtime::ParseTransport(t);
    o.frames = frames;
    o.warmup = std::max(2, frames / 10);
    o.policy = policy;
    o.self_exe = bin;
    o.allocation = *alloc;
    auto rep = RunPipeline(o);
    if (rep) {
      r.report = std::move(*rep);
    } else {
      r.error = rep.error().message;
    }
    if (!json) {
      const auto& s = r.report.sink;
      std::fprintf(stderr,
                   "%-9s %4dx%-4d %d %-6s %9.1f fps %9.1f med %8.2f %8.2f ms p50/p99 CCR %6.3f "
                   "drops %llu %s %s\n",
                   model.c_str(), w, h, stages, t.c_str(), s.fps, s.fps_median, s.latency_p50_ms,
                   s.latency_p99_ms, s.ccr, (unsigned long long)s.drops,
                   model == "conv" ? ("memcpy x" + std::to_string(OfMemcpy(r, peak))).c_str()
                                   : ("FMA peak x" + std::to_string(OfFmaPeak(r, peak))).c_str(),
                   r.error.c_str());
    }
    rows.push_back(std::move(r));
  };
  for (auto [w, h] : sizes) {
    double pixels = double(w) * h;
    int frames = quick ? 300 : int(std::clamp(2.0e9 / pixels, 300.0, 3000.0));
    add("conv", w, h, 1, "inproc", frames * 3);
    for (int n : stage_counts) {
      for (const std::string& t : transports) add("conv", w, h, n, t, frames);
    }
  }
  int yolo_frames = quick ? 20 : 60;
  add("yolo-tiny", 448, 448, 1, "inproc", yolo_frames);
  if (!monolithic) {
    for (const std::string& t : transports) add("yolo-tiny", 448, 448, 2, t, yolo_frames);
  }

  auto find = [&](const Target& t) -> const Row* {
    for (const Row& r : rows) {
      if (r.model == t.model && r.width == t.width && r.stages == t.stages &&
          r.transport == t.transport) {
        return &r;
      }
    }
    return nullptr;
  };
  if (json) {
    using edgefd::Json;
    using edgefd::RoundTo;
    const std::string onednn = edgefd::runtime::OneDnnVersion();
    const Json machine = {{"threads", peak.threads},
                          {"fma_peak_gflops", RoundTo(peak.fma_gflops, 2)},
                          {"fma_isa", peak.fma_isa},
                          {"memcpy_gbps", RoundTo(peak.memcpy_gbps, 2)},
                          {"kernels", edgefd::runtime::KernelIsa()},
                          {"onednn", onednn.empty() ? Json(nullptr) : Json(onednn)}};
    Json rows_json = Json::array();
    for (const Row& r : rows) {
      // The sink's part is run --json's own (SinkReportJson); the row adds what it ran.
      Json row = {{"model", r.model},   {"width", r.width},         {"height", r.height},
                  {"stages", r.stages}, {"transport", r.transport}, {"frames", r.frames}};
      row.update(edgefd::runtime::SinkReportJson(r.report.sink));
      row.update(Json{{"gflops", RoundTo(GflopPerFrame(r) * r.report.sink.fps, 2)},
                      {"of_fma_peak", RoundTo(OfFmaPeak(r, peak), 4)},
                      {"of_memcpy", RoundTo(OfMemcpy(r, peak), 4)},
                      {"error", r.error}});
      rows_json.push_back(std::move(row));
    }
    Json targets = Json::array();
    for (const Target& t : kTargets) {
      const Row* r = find(t);
      if (r == nullptr) continue;
      targets.push_back({{"target", t.what},
                         {"need_fps", t.fps},
                         {"fps", RoundTo(r->report.sink.fps, 2)},
                         {"fps_median", RoundTo(r->report.sink.fps_median, 2)},
                         {"met", r->report.sink.fps >= t.fps},
                         {"need_of_fma_peak", t.of_peak},
                         {"of_fma_peak", RoundTo(OfFmaPeak(*r, peak), 4)},
                         {"of_memcpy", RoundTo(OfMemcpy(*r, peak), 4)},
                         {"ratio_met", OfFmaPeak(*r, peak) >= t.of_peak}});
    }
    const Json report = {{"quick", quick},
                         {"policy", policy == Policy::kBlock ? "block" : "latest"},
                         {"machine", machine},
                         {"rows", std::move(rows_json)},
                         {"targets", std::move(targets)}};
    std::printf("%s\n", edgefd::DumpJson(report).c_str());
  } else {
    for (const Target& t : kTargets) {
      const Row* r = find(t);
      if (r == nullptr) continue;
      std::printf("target %-24s need %6.0f fps: %8.1f fps (median interval %8.1f) %s", t.what,
                  t.fps, r->report.sink.fps, r->report.sink.fps_median,
                  r->report.sink.fps >= t.fps ? "MET" : "missed");
      if (t.model == "conv") {
        std::printf("; frame traffic %.2f x memcpy bandwidth\n", OfMemcpy(*r, peak));
      } else {
        std::printf("; %.1f GFLOP/s = %.2f x FMA peak (need %.2f) %s\n",
                    GflopPerFrame(*r) * r->report.sink.fps, OfFmaPeak(*r, peak), t.of_peak,
                    OfFmaPeak(*r, peak) >= t.of_peak ? "MET" : "missed");
      }
    }
  }
  for (const Row& r : rows) {
    if (!r.error.empty()) return 1;
  }
  return 0;
}
