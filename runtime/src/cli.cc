#include "edgefd/runtime/cli.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/pipeline.h"

extern char** environ;

namespace edgefd::runtime {
namespace {

constexpr int kUsage = 2;
constexpr int kFailed = 3;

const char kHelp[] =
    "usage: edgefd-pipeline COMMAND [options]\n"
    "  run        --model conv|yolo-tiny --stages N --transport inproc|shm|grpc --frames N "
    "[--json]\n"
    "  stage      --model M --stages N --index I --listen ADDR --next ADDR [--metrics-port P]\n"
    "  source     --model M --next ADDR --frames N [--fps F]\n"
    "  sink       --model M --listen ADDR [--json]\n"
    "  partition  --model M --stages N [--profile] [--json]\n"
    "stage/source/sink --check: validate the options and print the stage's shapes, then exit\n"
    "model options: --width W --height H --channels C (conv), --seed S, --weights FILE\n"
    "run/stage options: --policy latest|block (run: block unless --fps paces the source;\n"
    "  stage: latest), --threads T, --delay-ms D[,D...], --profile,\n"
    "  --gflops G --link-mbps B (partition cost model), --warmup N, --fps F\n"
    "addresses: shm:NAME (/dev/shm ring), unix:/path or host:port or dns:///svc:port (gRPC)\n";

class Args {
 public:
  static Result<Args> Parse(int argc, char** argv, const std::set<std::string>& allowed) {
    static const std::set<std::string> kFlags = {"--json", "--profile", "--quiet", "--check"};
    Args a;
    for (int i = 2; i < argc; ++i) {
      std::string k = argv[i];
      if (!allowed.count(k)) {
        return Error{std::string(argv[1]) + ": unknown option '" + k + "' (see --help)"};
      }
      if (kFlags.count(k)) {
        a.v_[k] = "1";
        continue;
      }
      if (i + 1 >= argc) return Error{std::string(argv[1]) + ": " + k + " needs a value"};
      a.v_[k] = argv[++i];
    }
    return a;
  }
  bool Has(const std::string& k) const { return v_.count(k) > 0; }
  std::string Str(const std::string& k, const std::string& def) const {
    auto it = v_.find(k);
    return it == v_.end() ? def : it->second;
  }
  // 64-bit on every target: `long` is 32 bits on armhf, where 1 << 40 did not even compile.
  Result<int64_t> Int(const std::string& k, int64_t def, int64_t lo, int64_t hi) const {
    auto it = v_.find(k);
    if (it == v_.end()) return def;
    char* end = nullptr;
    errno = 0;
    int64_t v = std::strtoll(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
      return Error{k + " " + it->second + ": expected an integer " + std::to_string(lo) + ".." +
                   std::to_string(hi)};
    }
    return v;
  }
  Result<double> Num(const std::string& k, double def, double lo) const {
    auto it = v_.find(k);
    if (it == v_.end()) return def;
    char* end = nullptr;
    double v = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0' || !(v >= lo)) {
      return Error{k + " " + it->second + ": expected a number >= " + std::to_string(lo)};
    }
    return v;
  }

 private:
  std::map<std::string, std::string> v_;
};

const std::set<std::string> kModelOpts = {"--model",    "--width", "--height",
                                          "--channels", "--seed",  "--weights"};

std::set<std::string> With(std::set<std::string> base, std::initializer_list<const char*> more) {
  for (const char* m : more) base.insert(m);
  return base;
}

#define EDGEFD_TRY(var, expr)                                                       \
  auto var##_r = (expr);                                                            \
  if (!var##_r) {                                                                   \
    std::fprintf(stderr, "edgefd-pipeline: %s\n", var##_r.error().message.c_str()); \
    return kUsage;                                                                  \
  }                                                                                 \
  auto var = std::move(*var##_r)

Result<ModelSpec> ParseModel(const Args& a) {
  ModelSpec m;
  m.name = a.Str("--model", "conv");
  auto w = a.Int("--width", 1280, 4, 16384);
  auto h = a.Int("--height", 720, 4, 16384);
  auto c = a.Int("--channels", 1, 1, 64);
  auto seed = a.Int("--seed", 42, 0, int64_t{1} << 40);
  if (!w) return w.error();
  if (!h) return h.error();
  if (!c) return c.error();
  if (!seed) return seed.error();
  m.conv = {int(*w), int(*h), int(*c)};
  m.seed = uint64_t(*seed);
  m.weights_path = a.Str("--weights", "");
  return m;
}

Result<Policy> ParsePolicy(const Args& a, const char* default_policy = "latest") {
  std::string p = a.Str("--policy", default_policy);
  if (p == "latest") return Policy::kLatest;
  if (p == "block") return Policy::kBlock;
  return Error{"--policy " + p + ": use latest or block"};
}

Result<std::vector<double>> ParseDelays(const Args& a) {
  std::vector<double> out;
  std::string s = a.Str("--delay-ms", "");
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(pos, end - pos);
    char* e = nullptr;
    double v = std::strtod(item.c_str(), &e);
    if (item.empty() || *e != '\0' || v < 0)
      return Error{"--delay-ms " + s + ": bad value '" + item + "'"};
    out.push_back(v);
    pos = end + 1;
  }
  return out;
}

std::string SelfExe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
}

int CmdPartition(const Args& a) {
  EDGEFD_TRY(spec, ParseModel(a));
  EDGEFD_TRY(stages, a.Int("--stages", 2, 1, kMaxStages));
  EDGEFD_TRY(gflops, a.Num("--gflops", 100.0, 1e-6));
  EDGEFD_TRY(mbps, a.Num("--link-mbps", 1000.0, 0.0));
  EDGEFD_TRY(model, a.Has("--profile") ? BuildModel(spec) : MakeModel(spec.name, spec.conv));
  PartitionOptions p;
  p.stages = int(stages);
  p.gflops = gflops;
  p.link_mbps = mbps;
  if (a.Has("--profile")) {
    EDGEFD_TRY(exec, MakeCpuBackend()->Compile(model, 0, int(model.layers.size()),
                                               ExecOptions{1, {}, false}));
    p.layer_ms = exec->ProfileLayers(5);
  }
  EDGEFD_TRY(plan, Partition(model, p));
  if (a.Has("--json")) {
    std::printf("%s\n", PlanJson(model, plan).c_str());
  } else {
    std::printf("%s: %.3f GFLOP per frame, input %s, %s cost model\n%s", model.name.c_str(),
                model.Flops(0, int(model.layers.size())) / 1e9, model.Input().ToString().c_str(),
                a.Has("--profile") ? "measured (1 thread)" : "FLOPs",
                FormatPlan(model, plan).c_str());
  }
  return 0;
}

int CmdRun(const Args& a) {
  RunOptions o;
  EDGEFD_TRY(spec, ParseModel(a));
  o.model = spec;
  EDGEFD_TRY(stages, a.Int("--stages", 1, 1, kMaxStages));
  EDGEFD_TRY(frames, a.Int("--frames", 100, 1, 100000000));
  EDGEFD_TRY(warmup, a.Int("--warmup", 3, 0, 1000000));
  EDGEFD_TRY(threads, a.Int("--threads", 0, 0, 1024));
  EDGEFD_TRY(fps, a.Num("--fps", 0.0, 0.0));
  EDGEFD_TRY(gflops, a.Num("--gflops", 100.0, 1e-6));
  EDGEFD_TRY(mbps, a.Num("--link-mbps", 1000.0, 0.0));
  // An unpaced source produces frames as fast as it can: with newest-only links a run would
  // measure how fast frames are thrown away (and a sink that attaches late sees only the
  // last one). So `run` blocks unless the source is paced like a camera (--fps).
  EDGEFD_TRY(policy, ParsePolicy(a, fps > 0 ? "latest" : "block"));
  EDGEFD_TRY(delays, ParseDelays(a));
  EDGEFD_TRY(alloc, ReadAllocation(environ));
  o.stages = int(stages);
  o.frames = int(frames);
  o.warmup = int(std::min<int64_t>(warmup, frames - 1));
  o.threads = int(threads);
  o.source.fps = fps;
  o.partition.gflops = gflops;
  o.partition.link_mbps = mbps;
  o.policy = policy;
  o.stage_delay_ms = delays;
  o.profile = a.Has("--profile");
  o.transport = a.Str("--transport", "inproc");
  o.self_exe = SelfExe();
  o.allocation = alloc;
  auto model = MakeModel(spec.name, spec.conv);
  if (!model) {
    std::fprintf(stderr, "edgefd-pipeline: %s\n", model.error().message.c_str());
    return kUsage;
  }
  auto report = RunPipeline(o);
  if (!report) {
    std::fprintf(stderr, "edgefd-pipeline run: %s\n", report.error().message.c_str());
    return kFailed;
  }
  if (a.Has("--json")) {
    std::printf("%s\n", report->Json(*model).c_str());
  } else {
    std::printf("%s", report->Text().c_str());
  }
  return 0;
}

Result<std::pair<int, int>> ParseLayers(const std::string& s, int layers) {
  size_t colon = s.find(':');
  char* e1 = nullptr;
  char* e2 = nullptr;
  std::string a = s.substr(0, colon), b = colon == std::string::npos ? "" : s.substr(colon + 1);
  long first = std::strtol(a.c_str(), &e1, 10), last = std::strtol(b.c_str(), &e2, 10);
  if (a.empty() || b.empty() || *e1 || *e2 || first < 0 || last > layers || first >= last) {
    return Error{"--layers " + s +
                 ": expected FIRST:LAST with 0 <= FIRST < LAST <= " + std::to_string(layers)};
  }
  return std::make_pair(int(first), int(last));
}

int CmdStage(const Args& a) {
  EDGEFD_TRY(spec, ParseModel(a));
  EDGEFD_TRY(stages, a.Int("--stages", 1, 1, kMaxStages));
  EDGEFD_TRY(index, a.Int("--index", 0, 0, kMaxStages - 1));
  EDGEFD_TRY(threads, a.Int("--threads", 1, 1, 1024));
  EDGEFD_TRY(metrics_port, a.Int("--metrics-port", -1, -1, 65535));
  EDGEFD_TRY(idle_exit, a.Int("--idle-exit-ms", 0, 0, int64_t{1} << 40));
  EDGEFD_TRY(policy, ParsePolicy(a));
  EDGEFD_TRY(delays, ParseDelays(a));
  EDGEFD_TRY(alloc, ReadAllocation(environ));
  if (!a.Has("--listen") || !a.Has("--next")) {
    std::fprintf(stderr, "edgefd-pipeline stage: --listen ADDR and --next ADDR are required\n");
    return kUsage;
  }
  if (index >= stages) {
    std::fprintf(stderr, "edgefd-pipeline stage: --index %d must be below --stages %d\n",
                 int(index), int(stages));
    return kUsage;
  }
  EDGEFD_TRY(shape_model, MakeModel(spec.name, spec.conv));
  std::pair<int, int> range;
  if (a.Has("--layers")) {
    EDGEFD_TRY(r, ParseLayers(a.Str("--layers", ""), int(shape_model.layers.size())));
    range = r;
  } else {
    PartitionOptions p;
    p.stages = int(stages);
    EDGEFD_TRY(plan, Partition(shape_model, p));
    range = {plan.stages[index].first, plan.stages[index].last};
  }
  if (a.Has("--check")) {
    std::printf("stage %d: layers %d..%d of %s, input %s, output %s\n", int(index), range.first,
                range.second - 1, spec.name.c_str(),
                shape_model.layers[range.first].in.ToString().c_str(),
                shape_model.layers[range.second - 1].out.ToString().c_str());
    return 0;
  }
  EDGEFD_TRY(model, BuildModel(spec, range.first, range.second));
  if (a.Has("--quiet")) spdlog::set_level(spdlog::level::warn);
  std::vector<int> cpus = alloc.Explicit() ? alloc.ComputeCpus() : std::vector<int>{};
  std::string cpu_arg = a.Str("--cpus", "");
  if (cpu_arg == "none") {
    cpus.clear();
  } else if (!cpu_arg.empty()) {
    EDGEFD_TRY(c, ParseCpuList("--cpus", cpu_arg));
    cpus = c;
  }
  // Held until the stage exits: the allocation is in use, though only the CPU computes.
  const std::vector<OpenedDevice> devices = OpenAllocatedDevices(alloc);
  LogOpenedDevices(devices, "stage " + std::to_string(index));
  EDGEFD_TRY(exec, MakeCpuBackend()->Compile(model, range.first, range.second,
                                             ExecOptions{int(threads), cpus, true}));
  // gRPC's I/O threads start from this thread and inherit its affinity.
  if (alloc.Explicit()) (void)PinThisThread(alloc.IoCpus());
  EDGEFD_TRY(in, OpenReader(a.Str("--listen", ""), exec->InputShape(), policy));
  EDGEFD_TRY(
      out, OpenWriter(a.Str("--next", ""), exec->OutputShape(), policy, std::chrono::seconds(30)));
  StageCounters counters;
  std::unique_ptr<MetricsServer> metrics;
  if (metrics_port >= 0) {
    EDGEFD_TRY(m, MetricsServer::Start(int(metrics_port), &counters, int(index)));
    metrics = std::move(m);
    spdlog::info("stage {}: metrics on :{}/metrics", index, metrics->port());
  }
  spdlog::info("stage {}: layers {}..{} of {}, {} -> {}, {} thread(s) on CPUs {}", index,
               range.first, range.second - 1, spec.name, in->Address(), a.Str("--next", ""),
               threads, CpuListJson(cpus));
  StageOptions so;
  so.index = int(index);
  so.delay_ms = delays.empty() ? 0 : delays.front();
  so.idle_exit = std::chrono::milliseconds(idle_exit);
  Status s = RunStage(*in, *out, *exec, so, counters);
  if (!s) {
    std::fprintf(stderr, "edgefd-pipeline stage: %s\n", s.error().message.c_str());
    return kFailed;
  }
  return 0;
}

int CmdSource(const Args& a) {
  EDGEFD_TRY(spec, ParseModel(a));
  EDGEFD_TRY(frames, a.Int("--frames", 100, 1, 2147483647));
  EDGEFD_TRY(fps, a.Num("--fps", 0.0, 0.0));
  EDGEFD_TRY(model, MakeModel(spec.name, spec.conv));
  if (!a.Has("--next")) {
    std::fprintf(stderr, "edgefd-pipeline source: --next ADDR is required\n");
    return kUsage;
  }
  if (a.Has("--check")) {
    std::printf("source: %s frames of %s\n", spec.name.c_str(), model.Input().ToString().c_str());
    return 0;
  }
  EDGEFD_TRY(out, OpenWriter(a.Str("--next", ""), model.Input(), Policy::kBlock,
                             std::chrono::seconds(30)));
  SourceOptions so;
  so.frames = int(frames);
  so.fps = fps;
  so.seed = spec.seed;
  Status s = RunSource(*out, MakeSourceImages(model.Input(), so), so);
  if (!s) {
    std::fprintf(stderr, "edgefd-pipeline source: %s\n", s.error().message.c_str());
    return kFailed;
  }
  return 0;
}

int CmdSink(const Args& a) {
  EDGEFD_TRY(spec, ParseModel(a));
  EDGEFD_TRY(policy, ParsePolicy(a));
  EDGEFD_TRY(timeout, a.Int("--timeout-ms", 600000, 1, int64_t{1} << 40));
  EDGEFD_TRY(model, MakeModel(spec.name, spec.conv));
  if (!a.Has("--listen")) {
    std::fprintf(stderr, "edgefd-pipeline sink: --listen ADDR is required\n");
    return kUsage;
  }
  if (a.Has("--check")) {
    std::printf("sink: %s outputs of %s\n", spec.name.c_str(), model.Output().ToString().c_str());
    return 0;
  }
  EDGEFD_TRY(in, OpenReader(a.Str("--listen", ""), model.Output(), policy));
  SinkOptions so;
  so.timeout = std::chrono::milliseconds(timeout);
  so.log_every = std::chrono::seconds(10);
  auto r = RunSink(*in, so);
  if (!r) {
    std::fprintf(stderr, "edgefd-pipeline sink: %s\n", r.error().message.c_str());
    return kFailed;
  }
  std::printf(a.Has("--json") ? "{\"frames\":%llu,\"drops\":%llu,\"fps\":%.2f,"
                                "\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f,\"ccr\":%.4f,"
                                "\"checksum\":%.6f}\n"
                              : "%llu frames, %llu dropped, %.1f fps, latency p50 %.2f ms p99 "
                                "%.2f ms, CCR %.3f, checksum %.4f\n",
              (unsigned long long)r->frames, (unsigned long long)r->drops, r->fps,
              r->latency_p50_ms, r->latency_p99_ms, r->ccr, r->checksum);
  return 0;
}

}  // namespace

int PipelineMain(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(kHelp, argc < 2 ? stderr : stdout);
    return argc < 2 ? kUsage : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "--version") {
    std::string onednn = OneDnnVersion();
    std::printf("edgefd-pipeline %s\ncpu backend: %s, loops for %s\n", EDGEFD_VERSION,
                onednn.empty() ? "built without oneDNN (multi-channel conv and fc run edgefd's "
                                 "own loops, slower)"
                               : ("oneDNN " + onednn).c_str(),
                KernelIsa());
    return 0;
  }
  // Logs go to stderr: stdout carries the --json report.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("edgefd-pipeline"));
  spdlog::set_pattern("[%H:%M:%S.%e] [%l] %v");
  const std::set<std::string> run_opts = With(
      kModelOpts, {"--stages", "--transport", "--frames", "--warmup", "--policy", "--fps",
                   "--threads", "--gflops", "--link-mbps", "--delay-ms", "--profile", "--json"});
  const std::set<std::string> stage_opts =
      With(kModelOpts,
           {"--stages", "--index", "--layers", "--listen", "--next", "--policy", "--threads",
            "--cpus", "--metrics-port", "--delay-ms", "--idle-exit-ms", "--quiet", "--check"});
  const std::set<std::string> source_opts =
      With(kModelOpts, {"--next", "--frames", "--fps", "--check"});
  const std::set<std::string> sink_opts =
      With(kModelOpts, {"--listen", "--policy", "--timeout-ms", "--json", "--check"});
  const std::set<std::string> partition_opts =
      With(kModelOpts, {"--stages", "--profile", "--gflops", "--link-mbps", "--json"});
  const std::map<std::string, std::pair<const std::set<std::string>*, int (*)(const Args&)>>
      commands = {{"run", {&run_opts, CmdRun}},
                  {"stage", {&stage_opts, CmdStage}},
                  {"source", {&source_opts, CmdSource}},
                  {"sink", {&sink_opts, CmdSink}},
                  {"partition", {&partition_opts, CmdPartition}}};
  auto it = commands.find(cmd);
  if (it == commands.end()) {
    std::fprintf(stderr, "edgefd-pipeline: unknown command '%s'\n%s", cmd.c_str(), kHelp);
    return kUsage;
  }
  auto args = Args::Parse(argc, argv, *it->second.first);
  if (!args) {
    std::fprintf(stderr, "edgefd-pipeline %s\n", args.error().message.c_str());
    return kUsage;
  }
  return it->second.second(*args);
}

}  // namespace edgefd::runtime
