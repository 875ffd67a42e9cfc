#include "edgefd/runtime/cli.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "edgefd/common/cli.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/common/json.h"
#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/sink_report_json.h"
#include "edgefd/runtime/stage_args.h"
#include "edgefd/runtime/wire_format.h"
#include "planner_cli.h"

extern char** environ;

namespace edgefd::runtime {
namespace {

constexpr char kDescription[] =
    R"(The reference pipeline runtime: the conv and yolo-tiny models split into stages that run
as threads, as processes over /dev/shm rings, or as pods chained by gRPC.)";

constexpr char kFooter[] =
    R"(Addresses: shm:NAME (/dev/shm ring), unix:/path, host:port or dns:///svc:port (gRPC).
Compute threads: by default the fewest of the cpuset's CPUs, the cgroup's CPU quota (v1 or v2,
rounded to the nearest CPU, at least 1) and the cores EDGEFD_*_CPUS allocated; idle threads
sleep (OMP_WAIT_POLICY=passive unless OMP_WAIT_POLICY or GOMP_SPINCOUNT is set).
Exit status: 0 success, 1 the pipeline failed, 2 bad usage or bad input, 3 (plan) no
placement meets --latency-ms.
Run 'edgefd-pipeline COMMAND --help' for the options of a command.)";

// How often a stage and the sink log their figures: pods run with endless frame counts.
constexpr std::chrono::seconds kProgressLogEvery{10};

// Prints a usage error naming the input, the way the parser does.
int UsageError(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "edgefd-pipeline %s: %s\n", command.c_str(), message.c_str());
  return kExitUsage;
}

int Failure(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "edgefd-pipeline %s: %s\n", command.c_str(), message.c_str());
  return kExitFailure;
}

// "5,0,20" -> {"5", "0", "20"}; an empty item stays, to be refused.
std::vector<std::string> SplitCommas(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  for (size_t comma; (comma = text.find(',', pos)) != std::string::npos; pos = comma + 1) {
    out.push_back(text.substr(pos, comma - pos));
  }
  out.push_back(text.substr(pos));
  return out;
}

// What a stage or sink listens on is its own: the ring or unix socket goes when it exits,
// so the next run (or a restarted pod) starts from a fresh one.
void RemoveListenEndpoint(const std::string& address) {
  if (address.rfind("shm:", 0) == 0) UnlinkShm(address.substr(4));
  if (address.rfind("unix:", 0) == 0) ::unlink(address.substr(5).c_str());
}

struct RemoveListenOnExit {
  std::string address;
  ~RemoveListenOnExit() { RemoveListenEndpoint(address); }
};

// SIGTERM/SIGINT for a command that sends frames: its loop sees StopRequested() and ends the
// stream downstream, but a send can be blocked on a next stage that is gone (gRPC keeps
// connecting for up to 30 s). So the writer is aborted at once, and should the command still
// be running `grace` later, its listening ring or socket is removed and the process exits 0
// without the end-of-stream it could not deliver.
class StopWatch {
 public:
  StopWatch(FrameWriter& out, std::string listen,
            std::chrono::milliseconds grace = std::chrono::milliseconds(800))
      : on_stop_(std::make_unique<OnStop>([this, &out, listen = std::move(listen), grace](int sig) {
          spdlog::info("signal {}: stopping", sig);
          out.Abort();
          std::unique_lock lock(mu_);
          if (cv_.wait_for(lock, grace, [this] { return finished_; })) return;
          spdlog::warn("could not end the stream downstream within {} ms; exiting without it",
                       grace.count());
          RemoveListenEndpoint(listen);
          spdlog::default_logger()->flush();
          std::fflush(nullptr);
          ::_exit(kExitOk);
        })) {}
  ~StopWatch() {
    {
      std::lock_guard lock(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    on_stop_.reset();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool finished_ = false;
  std::unique_ptr<OnStop> on_stop_;  // last: its thread uses the members above
};

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

// --gflops and --link-mbps: the partition's cost model.
void AddCostModelFlags(CLI::App& app, PartitionOptions& p) {
  app.add_option("--gflops", p.gflops, "compute speed the partition assumes (default: 100)")
      ->type_name("G")
      ->check(NumberIn(1e-6, 1e12));
  app.add_option("--link-mbps", p.link_mbps, "link speed the partition assumes (default: 1000)")
      ->type_name("B")
      ->check(NumberIn(0, 1e12));
}

// --- partition ---------------------------------------------------------------------------

struct PartitionArgs {
  ModelSpec model;
  PartitionOptions partition;
  bool profile = false;
  bool json = false;
};

void AddPartitionFlags(CLI::App& app, PartitionArgs& a) {
  a.partition.stages = 2;
  AddModelFlags(app, a.model);
  app.add_option("--stages", a.partition.stages, "stages to split the model into (default: 2)")
      ->type_name("N")
      ->check(IntegerIn(1, kMaxStages));
  app.add_flag("--profile", a.profile, "cost each layer by running it (1 thread), not by FLOPs");
  AddCostModelFlags(app, a.partition);
  app.add_flag("--json", a.json, "print the plan as JSON");
}

int CmdPartition(PartitionArgs a) {
  auto model = a.profile ? BuildModel(a.model) : MakeModel(a.model.name, a.model.conv);
  if (!model) return UsageError("partition", model.error().message);
  if (a.profile) {
    auto exec =
        MakeCpuBackend()->Compile(*model, 0, int(model->layers.size()), ExecOptions{1, {}, false});
    if (!exec) return Failure("partition", exec.error().message);
    a.partition.layer_ms = (*exec)->ProfileLayers(5);
  }
  auto plan = Partition(*model, a.partition);
  if (!plan) return UsageError("partition", plan.error().message);
  if (a.json) {
    std::printf("%s\n", DumpJson(PlanJson(*model, *plan)).c_str());
  } else {
    std::printf("%s: %.3f GFLOP per frame, input %s, %s cost model\n%s", model->name.c_str(),
                model->Flops(0, int(model->layers.size())) / 1e9, model->Input().ToString().c_str(),
                a.profile ? "measured (1 thread)" : "FLOPs", FormatPlan(*model, *plan).c_str());
  }
  return kExitOk;
}

// --- run ---------------------------------------------------------------------------------

struct RunArgs {
  RunOptions options;
  std::optional<Policy> policy;  // default: block, latest when --fps paces the source
  bool json = false;
};

void AddRunFlags(CLI::App& app, RunArgs& a) {
  RunOptions& o = a.options;
  AddModelFlags(app, o.model);
  app.add_option("--stages", o.stages, "stages to split the model into (default: 1)")
      ->type_name("N")
      ->check(IntegerIn(1, kMaxStages));
  app.add_option_function<std::string>(
         "--transport", [&o](const std::string& name) { o.transport = *ParseTransport(name); },
         "inproc (threads), shm or grpc (a process per stage) (default: inproc)")
      ->type_name("T")
      ->check(OneOf({"inproc", "shm", "grpc"}));
  app.add_option("--frames", o.frames, "frames the source sends (default: 100)")
      ->type_name("N")
      ->check(IntegerIn(1, 100000000));
  app.add_option("--warmup", o.warmup, "frames left out of the figures (default: 3)")
      ->type_name("N")
      ->check(IntegerIn(0, 1000000));
  AddPolicyFlag(
      app, [&a](Policy p) { a.policy = p; }, "block, latest with --fps");
  app.add_option("--fps", o.source.fps, "pace the source like a camera (default: 0, unpaced)")
      ->type_name("F")
      ->check(NumberIn(0, 1e9));
  app.add_option("--threads", o.threads,
                 "compute threads per stage (default: 0: the fewest of the cpuset's CPUs, the "
                 "cgroup's CPU quota rounded to the nearest CPU, and the allocated cores, "
                 "divided among the stages; at least 1)")
      ->type_name("T")
      ->check(IntegerIn(0, 1024));
  app.add_option("--root", o.root,
                 "read /proc/self/cgroup and /sys/fs/cgroup under DIR (default: /; for tests)")
      ->type_name("DIR");
  AddCostModelFlags(app, o.partition);
  app.add_option_function<std::string>(
         "--delay-ms",
         [&o](const std::string& text) {
           o.stage_delay_ms.clear();
           for (const std::string& d : SplitCommas(text)) {
             o.stage_delay_ms.push_back(*ParseMilliseconds(d));
           }
         },
         "extra milliseconds per frame, per stage: D[,D...]")
      ->type_name("D")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            for (const std::string& d : SplitCommas(text)) {
              if (!ParseMilliseconds(d)) {
                return "'" + text + "' is not a list of milliseconds like 5 or 0,20";
              }
            }
            return {};
          },
          ""));
  app.add_flag("--profile", o.profile, "partition by measured per-layer time");
  app.add_flag("--json", a.json, "print the report as JSON");
}

int CmdRun(RunArgs a) {
  RunOptions& o = a.options;
  // An unpaced source produces frames as fast as it can: with newest-only links a run would
  // measure how fast frames are thrown away (and a sink that attaches late sees only the
  // last one). So `run` blocks unless the source is paced like a camera (--fps).
  o.policy = a.policy.value_or(o.source.fps > 0 ? Policy::kLatest : Policy::kBlock);
  o.warmup = std::min(o.warmup, o.frames - 1);
  o.self_exe = SelfExe();
  o.stop = &StopRequested();  // SIGTERM/SIGINT: a report of the frames so far
  auto allocation = ReadAllocation(environ);
  if (!allocation) return UsageError("run", allocation.error().message);
  o.allocation = std::move(*allocation);
  auto model = MakeModel(o.model.name, o.model.conv);
  if (!model) return UsageError("run", model.error().message);
  if (!o.model.weights_path.empty()) {
    // Only opens the file and checks its size (no layer in range): bad input before any work.
    if (Status s = LoadWeights(*model, o.model.weights_path, 0, 0); !s) {
      return UsageError("run", s.error().message);
    }
  }
  auto report = RunPipeline(o);
  if (!report) return Failure("run", report.error().message);
  if (a.json) {
    std::printf("%s\n", report->Json(*model).c_str());
  } else {
    std::printf("%s", report->Text().c_str());
  }
  return kExitOk;
}

// --- stage -------------------------------------------------------------------------------

// The stage's layers: --layers, checked against the model, else its share of the partition.
Result<std::pair<int, int>> StageLayers(const StageArgs& a, const Model& model) {
  const int layers = int(model.layers.size());
  if (a.layers) {
    if (a.layers->second > layers) {
      return Error{"--layers " + std::to_string(a.layers->first) + ":" +
                   std::to_string(a.layers->second) + ": " + a.model.name + " has " +
                   std::to_string(layers) + " layers"};
    }
    return *a.layers;
  }
  PartitionOptions p;
  p.stages = a.stages;
  auto plan = Partition(model, p);
  if (!plan) return plan.error();
  return std::make_pair(plan->stages[a.index].first, plan->stages[a.index].last);
}

int CmdStage(const StageArgs& a) {
  if (a.index >= a.stages) {
    return UsageError("stage", "--index " + std::to_string(a.index) + " must be below --stages " +
                                   std::to_string(a.stages));
  }
  auto allocation = ReadAllocation(environ);
  if (!allocation) return UsageError("stage", allocation.error().message);
  auto shape_model = MakeModel(a.model.name, a.model.conv);
  if (!shape_model) return UsageError("stage", shape_model.error().message);
  auto range = StageLayers(a, *shape_model);
  if (!range) return UsageError("stage", range.error().message);
  const auto [first, last] = *range;
  if (a.check) {
    std::printf("stage %d: layers %d..%d of %s, input %s, output %s\n", a.index, first, last - 1,
                a.model.name.c_str(), shape_model->layers[first].in.ToString().c_str(),
                shape_model->layers[last - 1].out.ToString().c_str());
    return kExitOk;
  }
  auto model = BuildModel(a.model, first, last);
  if (!model) return UsageError("stage", model.error().message);
  if (a.quiet) spdlog::set_level(spdlog::level::warn);
  std::vector<int> cpus = allocation->Explicit() ? allocation->ComputeCpus() : std::vector<int>{};
  if (a.cpus) cpus = *a.cpus;
  // Held until the stage exits: the allocation is in use, though only the CPU computes.
  const std::vector<OpenedDevice> devices = OpenAllocatedDevices(*allocation);
  LogOpenedDevices(devices, "stage " + std::to_string(a.index));
  auto exec = MakeCpuBackend()->Compile(*model, first, last, ExecOptions{a.threads, cpus, true});
  if (!exec) return UsageError("stage", exec.error().message);
  // gRPC's I/O threads start from this thread and inherit its affinity.
  if (allocation->Explicit()) (void)PinThisThread(allocation->IoCpus());
  auto in = OpenWireReader(a.listen, (*exec)->InputShape(), a.wire_in, a.policy, a.tls);
  if (!in) return UsageError("stage", in.error().message);
  RemoveListenOnExit listening{a.listen};
  auto out = OpenWireWriter(a.next, (*exec)->OutputShape(), a.wire_out, a.policy,
                            std::chrono::seconds(30), a.tls);
  if (!out) return UsageError("stage", out.error().message);
  StopWatch stop_watch(**out, a.listen);
  StageCounters counters;
  std::unique_ptr<HttpEndpoint> metrics;
  if (MetricsEnabled(a.metrics_addr)) {
    auto started =
        StartHealthEndpoint(a.metrics_addr, StageHealth(counters, a.index), "--metrics-addr");
    if (!started) return UsageError("stage", started.error().message);
    metrics = std::move(*started);
    spdlog::info("stage {}: metrics on port {}", a.index, metrics->port());
  }
  spdlog::info("stage {}: layers {}..{} of {}, {} -> {}, {} thread(s) on CPUs {}", a.index, first,
               last - 1, a.model.name, (*in)->Address(), a.next, a.threads,
               cpus.empty() ? "any" : FormatCpuList(cpus));
  StageOptions so;
  so.index = a.index;
  so.delay_ms = a.delay_ms;
  so.idle_exit = std::chrono::milliseconds(a.idle_exit_ms);
  so.stop = &StopRequested();
  so.log_every = kProgressLogEvery;
  Status s = RunStage(**in, **out, **exec, so, counters);
  // A link another process corrupted is bad input, named in the message.
  if (!s && ((*in)->Fault() || (*out)->Fault())) return UsageError("stage", s.error().message);
  if (!s) return Failure("stage", s.error().message);
  return kExitOk;
}

// --- source and sink ---------------------------------------------------------------------

struct SourceArgs {
  ModelSpec model;
  std::string next;
  SourceOptions source;
  LinkSecurity tls;
  WireFormat wire_out = WireFormat::kFloat32;
  bool check = false;
};

void AddSourceFlags(CLI::App& app, SourceArgs& a) {
  AddWireFlag(app, "--wire-out", a.wire_out, "how frames leave");
  AddModelFlags(app, a.model);
  app.add_option("--next", a.next, "where frames go")->type_name("ADDR")->required();
  app.add_option("--frames", a.source.frames, "frames to send (default: 100)")
      ->type_name("N")
      ->check(IntegerIn(1, 2147483647));
  app.add_option("--fps", a.source.fps, "frames per second (default: 0, as fast as taken)")
      ->type_name("F")
      ->check(NumberIn(0, 1e9));
  AddLinkSecurityFlags(app, a.tls);
  app.add_flag("--check", a.check, "print the frames' shape, then exit");
}

int CmdSource(SourceArgs a) {
  auto model = MakeModel(a.model.name, a.model.conv);
  if (!model) return UsageError("source", model.error().message);
  if (a.check) {
    std::printf("source: %s frames of %s\n", a.model.name.c_str(),
                model->Input().ToString().c_str());
    return kExitOk;
  }
  auto out = OpenWireWriter(a.next, model->Input(), a.wire_out, Policy::kBlock,
                            std::chrono::seconds(30), a.tls);
  if (!out) return UsageError("source", out.error().message);
  StopWatch stop_watch(**out, "");
  a.source.seed = a.model.seed;
  a.source.stop = &StopRequested();
  spdlog::info("source: {} frames of {} to {}", a.source.frames, model->Input().ToString(), a.next);
  Status s = RunSource(**out, MakeSourceImages(model->Input(), a.source), a.source);
  if (!s && (*out)->Fault()) return UsageError("source", s.error().message);
  if (!s) return Failure("source", s.error().message);
  return kExitOk;
}

struct SinkArgs {
  ModelSpec model;
  std::string listen;
  Policy policy = Policy::kLatest;
  int64_t timeout_ms = 600000;
  LinkSecurity tls;
  WireFormat wire_in = WireFormat::kFloat32;
  std::string metrics_addr = "none";
  bool json = false;
  bool check = false;
};

void AddSinkFlags(CLI::App& app, SinkArgs& a) {
  AddWireFlag(app, "--wire-in", a.wire_in, "how outputs arrive");
  AddModelFlags(app, a.model);
  app.add_option("--listen", a.listen, "where frames arrive")->type_name("ADDR")->required();
  AddPolicyFlag(
      app, [&a](Policy p) { a.policy = p; }, "latest");
  app.add_option("--timeout-ms", a.timeout_ms,
                 "give up after this long without a frame (default: 600000)")
      ->type_name("MS")
      ->check(IntegerIn(1, 1LL << 40));
  AddLinkSecurityFlags(app, a.tls);
  AddPipelineMetricsFlags(app, a.metrics_addr);
  app.add_flag("--json", a.json, "print the report as JSON");
  app.add_flag("--check", a.check, "print the outputs' shape, then exit");
}

// The sink's report: what `run --json` reports of its sink (SinkReportJson), with the frame
// count under the sink's own key.
Json SinkJson(const SinkReport& r) {
  Json report = SinkReportJson(r);
  report.erase("frames_received");
  report["frames"] = r.frames;
  return report;
}

int CmdSink(const SinkArgs& a) {
  auto model = MakeModel(a.model.name, a.model.conv);
  if (!model) return UsageError("sink", model.error().message);
  if (a.check) {
    std::printf("sink: %s outputs of %s\n", a.model.name.c_str(),
                model->Output().ToString().c_str());
    return kExitOk;
  }
  auto in = OpenWireReader(a.listen, model->Output(), a.wire_in, a.policy, a.tls);
  if (!in) return UsageError("sink", in.error().message);
  RemoveListenOnExit listening{a.listen};
  SinkOptions so;
  so.stop = &StopRequested();  // SIGTERM/SIGINT: report what arrived so far
  spdlog::info("sink: waiting for {} outputs on {}", model->Output().ToString(), (*in)->Address());
  so.timeout = std::chrono::milliseconds(a.timeout_ms);
  so.log_every = kProgressLogEvery;
  SinkAccumulator live(so);
  std::unique_ptr<HttpEndpoint> metrics;
  if (MetricsEnabled(a.metrics_addr)) {
    HealthChecks checks;
    checks.metrics = [&live] { return SinkPrometheusText(live.Snapshot()); };
    auto started = StartHealthEndpoint(a.metrics_addr, std::move(checks), "--metrics-addr");
    if (!started) return UsageError("sink", started.error().message);
    metrics = std::move(*started);
    spdlog::info("sink: metrics on port {}", metrics->port());
  }
  auto r = RunSink(**in, so, &live);
  metrics.reset();  // before `live` goes
  if (!r && (*in)->Fault()) return UsageError("sink", r.error().message);
  if (!r) return Failure("sink", r.error().message);
  if (a.json) {
    std::printf("%s\n", DumpJson(SinkJson(*r)).c_str());
  } else {
    const std::string latency = r->latency_measured
                                    ? "latency p50 " + std::to_string(r->latency_p50_ms) +
                                          " ms p99 " + std::to_string(r->latency_p99_ms) + " ms"
                                    : "latency " + r->latency_note;
    std::printf("%llu frames, %llu dropped, %.1f fps, %s, CCR %.3f, checksum %.4f\n",
                (unsigned long long)r->frames, (unsigned long long)r->drops, r->fps,
                latency.c_str(), r->ccr, r->checksum);
  }
  return kExitOk;
}

}  // namespace

int PipelineMain(int argc, char** argv) {
  // Before anything else: as PID 1 in its pod, a SIGTERM without a handler would be dropped.
  InstallStopHandlers();
  CLI::App app(kDescription, "edgefd-pipeline");
  ConfigureApp(app, kFooter);
  // --version also says what computes: a build without oneDNN is slower, never silently so.
  const std::string onednn = OneDnnVersion();
  app.set_version_flag(
      "--version",
      "edgefd-pipeline " + std::string(Version()) + "\ncpu backend: " +
          (onednn.empty()
               ? std::string("built without oneDNN (multi-channel conv and fc run edgefd's own "
                             "loops, slower)")
               : "oneDNN " + onednn) +
          ", loops for " + KernelIsa(),
      "show the version and what computes, and exit");
  app.require_subcommand(1);
  // --log-level may come before or after the command.
  app.fallthrough();
  std::string log_level = "info";
  AddLogLevelFlag(app, log_level);

  RunArgs run;
  StageArgs stage;
  SourceArgs source;
  SinkArgs sink;
  PartitionArgs partition;
  CLI::App* run_cmd = app.add_subcommand("run", "a whole pipeline on this machine, with a report");
  AddRunFlags(*run_cmd, run);
  CLI::App* stage_cmd = app.add_subcommand("stage", "one stage: frames in, layers, frames out");
  AddStageFlags(*stage_cmd, stage);
  CLI::App* source_cmd = app.add_subcommand("source", "sends synthetic frames to a stage");
  AddSourceFlags(*source_cmd, source);
  CLI::App* sink_cmd = app.add_subcommand("sink", "receives a pipeline's outputs and reports");
  AddSinkFlags(*sink_cmd, sink);
  CLI::App* partition_cmd =
      app.add_subcommand("partition", "prints how a model splits into stages");
  AddPartitionFlags(*partition_cmd, partition);
  for (CLI::App* cmd : {run_cmd, stage_cmd, source_cmd, sink_cmd, partition_cmd}) {
    cmd->formatter(app.get_formatter());
  }
  PlannerCommands* planner = AddPlannerCommands(app);

  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  // Logs go to stderr: stdout carries the reports.
  SetUpLogging("edgefd-pipeline", log_level);
  if (run_cmd->parsed()) return CmdRun(std::move(run));
  if (stage_cmd->parsed()) return CmdStage(stage);
  if (source_cmd->parsed()) return CmdSource(std::move(source));
  if (sink_cmd->parsed()) return CmdSink(sink);
  if (auto code = RunPlannerCommand(*planner)) return *code;
  return CmdPartition(std::move(partition));
}

}  // namespace edgefd::runtime
