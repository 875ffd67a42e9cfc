// `run`: a whole pipeline on one machine, its stages as threads or as processes linked by
// shm rings or gRPC over unix sockets (the loops they run: stage_loops.cc).
#include "edgefd/runtime/pipeline.h"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "edgefd/common/files.h"
#include "edgefd/runtime/stage_args.h"

extern char** environ;

namespace edgefd::runtime {
namespace {

bool Stopping(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

/// Stage `stage`'s share of the allocated compute cores; nothing when none were allocated.
std::vector<int> StageCpus(const RunOptions& o, int stage, int threads) {
  if (!o.allocation.Explicit()) return {};
  std::vector<int> all = o.allocation.ComputeCpus();
  if (all.empty()) return {};
  std::vector<int> cpus;
  for (int t = 0; t < threads; ++t) {
    int c = all[size_t(stage * threads + t) % all.size()];
    if (std::find(cpus.begin(), cpus.end(), c) == cpus.end()) cpus.push_back(c);
  }
  return cpus;
}

Result<PartitionPlan> PlanFor(const RunOptions& o, const Model& model, int threads) {
  PartitionOptions p = o.partition;
  p.stages = o.stages;
  if (o.profile) {
    auto exec = MakeCpuBackend()->Compile(model, 0, int(model.layers.size()),
                                          ExecOptions{threads, {}, false});
    if (!exec) return exec.error();
    p.layer_ms = (*exec)->ProfileLayers(5);
  }
  return Partition(model, p);
}

/// The /dev/shm rings (`tag`-0..count-1) and the socket directory of a run, removed on scope
/// exit.
struct RunFiles {
  int rings;
  std::string tag;
  std::string dir;
  ~RunFiles() {
    for (int l = 0; l < rings; ++l) UnlinkShm(tag + "-" + std::to_string(l));
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

/// Child processes of a run (shm / grpc), killed by pid if the run fails.
class Children {
 public:
  ~Children() {
    for (pid_t p : pids_) kill(p, SIGTERM);
    Reap();
  }
  Status Spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid;
    int rc = posix_spawn(&pid, args[0].c_str(), nullptr, nullptr, argv.data(), environ);
    if (rc != 0) return Error{"cannot start " + args[0] + ": " + std::strerror(rc)};
    pids_.push_back(pid);
    return Ok{};
  }
  /// Watches the children on a thread; a child that fails sets `failed`.
  void Watch(std::atomic<bool>* failed) {
    watcher_ = std::thread([this, failed] {
      size_t left = pids_.size();
      while (left > 0) {
        int st = 0;
        pid_t p = waitpid(-1, &st, 0);
        if (p < 0) break;
        std::lock_guard<std::mutex> lock(mu_);
        auto it = std::find(pids_.begin(), pids_.end(), p);
        if (it == pids_.end()) continue;
        pids_.erase(it);
        --left;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
          spdlog::error("stage process {} failed (status {})", p, st);
          failed->store(true);
        }
      }
    });
  }
  void Join() {
    if (watcher_.joinable()) watcher_.join();
  }
  void Reap() {
    std::vector<pid_t> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left = pids_;
    }
    for (pid_t p : left) kill(p, SIGTERM);
    Join();
    for (pid_t p : pids_) waitpid(p, nullptr, 0);
    pids_.clear();
  }

 private:
  std::vector<pid_t> pids_;
  std::mutex mu_;
  std::thread watcher_;
};

// What every way of running a pipeline shares: the model, its plan, the source and sink.
struct RunContext {
  const RunOptions& options;
  const Model& model;
  const PartitionPlan& plan;
  int threads;  // compute threads per stage
  SourceOptions source;
  SinkOptions sink;
  std::vector<int> io_cpus;
};

// Monolithic: source, model and sink on one thread, as a single process would run it.
Result<SinkReport> RunMonolithic(const RunContext& run) {
  const Model& model = run.model;
  auto exec = MakeCpuBackend()->Compile(
      model, 0, int(model.layers.size()),
      ExecOptions{run.threads, StageCpus(run.options, 0, run.threads), true});
  if (!exec) return exec.error();
  SourceImages images = MakeSourceImages(model.Input(), run.source);
  Buffer out(model.Output().Elements());
  SinkAccumulator acc(run.sink);
  for (int f = 1; f <= run.options.frames && !Stopping(run.options.stop); ++f) {
    FrameMeta meta;
    meta.seq = uint64_t(f);
    meta.t_source_ns = NowNs();
    meta.source_clock = ClockId();
    const int64_t t_in = NowNs();
    (*exec)->Run(images.images[size_t(f) % images.images.size()].data(), out.data());
    meta.stages[0].compute_ns = NowNs() - t_in;
    meta.stage_count = 1;
    meta.shape = model.Output();
    acc.Add(meta, out.data(), NowNs());
  }
  return acc.Finish();
}

// Stages as threads of this process over in-memory links; `link_drops` gets each link's drops.
Result<SinkReport> RunThreads(const RunContext& run, std::vector<uint64_t>* link_drops) {
  const RunOptions& o = run.options;
  const Model& model = run.model;
  const int n = o.stages;
  std::vector<MailboxPair> links;
  links.push_back(MakeInprocLink(model.Input().Bytes(), Policy::kBlock));
  for (int s = 0; s < n; ++s) {
    links.push_back(
        MakeInprocLink(model.layers[run.plan.stages[s].last - 1].out.Bytes(), o.policy));
  }
  std::vector<std::unique_ptr<Executor>> execs;
  for (int s = 0; s < n; ++s) {
    auto e =
        MakeCpuBackend()->Compile(model, run.plan.stages[s].first, run.plan.stages[s].last,
                                  ExecOptions{run.threads, StageCpus(o, s, run.threads), true});
    if (!e) return e.error();
    execs.push_back(std::move(*e));
  }
  std::vector<StageCounters> counters(n);
  std::vector<std::thread> workers;
  SourceImages images = MakeSourceImages(model.Input(), run.source);
  workers.emplace_back([&] {
    (void)PinThisThread(run.io_cpus);
    (void)RunSource(*links[0].writer, images, run.source);
  });
  for (int s = 0; s < n; ++s) {
    workers.emplace_back([&, s] {
      StageOptions so;
      so.index = s;
      so.stop = o.stop;
      if (size_t(s) < o.stage_delay_ms.size()) so.delay_ms = o.stage_delay_ms[s];
      Status st = RunStage(*links[s].reader, *links[s + 1].writer, *execs[s], so, counters[s]);
      if (!st) spdlog::error("{}", st.error().message);
    });
  }
  (void)PinThisThread(run.io_cpus);
  auto sink = RunSink(*links[n].reader, run.sink);
  // Stopped early, or the sink gave up (no frame for its timeout: seen under qemu, where a
  // tiny-YOLO stage took longer than that and the run hung instead of failing): nobody reads
  // what blocked producers wait to hand over, so release them or joining them waits forever.
  if (Stopping(o.stop) || !sink) {
    for (MailboxPair& link : links) {
      link.writer->Abort();
      if (!sink) (void)link.writer->Close();
    }
  }
  for (auto& w : workers) w.join();
  for (int s = 0; s <= n; ++s) link_drops->push_back(links[s].reader->Drops());
  return sink;
}

// What `run` tells child stage `s`: its layers of the plan, its links, its share of the cores.
StageArgs ChildStageArgs(const RunContext& run, int s, std::string listen, std::string next) {
  const RunOptions& o = run.options;
  StageArgs args;
  args.model = o.model;
  args.stages = o.stages;
  args.index = s;
  args.layers = std::make_pair(run.plan.stages[s].first, run.plan.stages[s].last);
  args.listen = std::move(listen);
  args.next = std::move(next);
  args.policy = o.policy;
  args.threads = run.threads;
  args.cpus = StageCpus(o, s, run.threads);  // empty: not pinned
  if (size_t(s) < o.stage_delay_ms.size()) args.delay_ms = o.stage_delay_ms[s];
  // A stage whose upstream died must not linger.
  args.idle_exit_ms = 60000;
  args.quiet = true;
  return args;
}

// Stages as child processes of this one (edgefd-pipeline stage) over /dev/shm rings or gRPC
// on unix sockets; source and sink run here.
Result<SinkReport> RunProcesses(const RunContext& run) {
  const RunOptions& o = run.options;
  const int n = o.stages;
  const bool shm = o.transport == Transport::kShm;
  if (o.self_exe.empty()) {
    return Error{"--transport " + TransportName(o.transport) + ": path of edgefd-pipeline unknown"};
  }
  std::string dir = o.work_dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/edgefd-run-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return Error{"cannot create a directory under /tmp"};
    dir = tmpl;
  }
  // edgefd-<pid>-<random>: the pid says whose rings they are, the token keeps apart runs that
  // share a pid (1 in every container, or a reused one) and /dev/shm.
  const std::string tag = "edgefd-" + std::to_string(getpid()) + "-" + RandomHex(8);
  // Whatever way the run ends (children are reaped first, declared below), its rings and
  // sockets go.
  RunFiles files{shm ? n + 1 : 0, tag, o.work_dir.empty() ? dir : ""};
  if (shm) spdlog::info("run: rings /dev/shm/{}-0 to -{}", tag, n);
  auto address = [&](int link) {
    if (shm) return "shm:" + tag + "-" + std::to_string(link);
    return "unix:" + dir + "/link" + std::to_string(link) + ".sock";
  };
  // The sink's end exists before any stage starts.
  auto sink_in = OpenReader(address(n), run.model.Output(), o.policy);
  if (!sink_in) return sink_in.error();
  Children children;
  for (int s = 0; s < n; ++s) {
    std::vector<std::string> argv = StageArgv(ChildStageArgs(run, s, address(s), address(s + 1)));
    argv.insert(argv.begin(), o.self_exe);
    Status st = children.Spawn(argv);
    if (!st) return st.error();
  }
  std::atomic<bool> failed{false};
  children.Watch(&failed);
  SinkOptions sink_options = run.sink;
  sink_options.abort = &failed;
  auto src_out =
      OpenWriter(address(0), run.model.Input(), Policy::kBlock, std::chrono::seconds(20));
  if (!src_out) return src_out.error();
  Status src_status = Ok{};
  std::thread src([&] {
    (void)PinThisThread(run.io_cpus);
    src_status = RunSource(**src_out, MakeSourceImages(run.model.Input(), run.source), run.source);
    if (!src_status) failed.store(true);
  });
  auto sink = RunSink(**sink_in, sink_options);
  // A failed or stopped run must not leave the source waiting for a consumer that is gone.
  const bool stopped = Stopping(o.stop);
  if (!sink || stopped) (*src_out)->Abort();
  src.join();
  if (!sink || stopped) {
    // Stopped children end their streams and exit at once (their own SIGTERM handling).
    children.Reap();
  } else {
    children.Join();
  }
  // A source we aborted (stopped, or the sink failed) ends in an error of our own making.
  if (!src_status && !(*src_out)->Aborted()) return src_status.error();
  return sink;
}

}  // namespace

std::string TransportName(Transport transport) {
  switch (transport) {
    case Transport::kInproc:
      return "inproc";
    case Transport::kShm:
      return "shm";
    case Transport::kGrpc:
      return "grpc";
  }
  return "?";
}

std::optional<Transport> ParseTransport(std::string_view name) {
  for (Transport t : {Transport::kInproc, Transport::kShm, Transport::kGrpc}) {
    if (name == TransportName(t)) return t;
  }
  return std::nullopt;
}

Result<RunReport> RunPipeline(const RunOptions& o) {
  RunReport report;
  report.options = o;
  if (o.allocation.Explicit()) {
    report.compute_cpus = o.allocation.ComputeCpus();
    report.io_cpus = o.allocation.IoCpus();
  }
  report.devices = OpenAllocatedDevices(o.allocation);
  LogOpenedDevices(report.devices, "run");
  // Every stage of this run shares the cores, in-process or as child processes.
  report.threads = ChooseThreads(ReadCpuLimits(o.root, o.allocation), o.threads, o.stages);
  for (const std::string& why : report.threads.limits.ignored) {
    spdlog::warn("run: ignored {}", why);
  }
  spdlog::info("run: compute threads per stage: {}; idle threads wait: {}", report.threads.reason,
               WaitPolicy());
  auto model = BuildModel(o.model);
  if (!model) return model.error();
  auto plan = PlanFor(o, *model, report.threads.threads);
  if (!plan) return plan.error();
  report.plan = *plan;
  RunContext run{o, *model, report.plan, report.threads.threads, o.source, {}, report.io_cpus};
  run.source.frames = o.frames;
  run.source.seed = o.model.seed;
  run.sink.warmup = o.warmup;
  run.sink.keep_outputs = o.keep_outputs;
  run.sink.timeout = o.sink_timeout;
  run.source.stop = o.stop;
  run.sink.stop = o.stop;

  spdlog::info("run: {} over {} stage(s) ({}), {} frames", o.model.name, o.stages,
               TransportName(o.transport), o.frames);
  const int64_t t0 = NowNs();
  Result<SinkReport> sink = Error{"no transport"};
  switch (o.transport) {
    case Transport::kInproc:
      if (o.stages == 1) {
        sink = RunMonolithic(run);
        report.link_drops = {0, 0};
      } else {
        sink = RunThreads(run, &report.link_drops);
      }
      break;
    case Transport::kShm:
    case Transport::kGrpc:
      sink = RunProcesses(run);
      break;
  }
  if (!sink) return sink.error();
  report.sink = std::move(*sink);
  report.wall_s = double(NowNs() - t0) / 1e9;
  return report;
}

}  // namespace edgefd::runtime
