#include "edgefd/runtime/pipeline.h"

#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "edgefd/common/json.h"
#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/stage_args.h"

extern char** environ;

namespace edgefd::runtime {

Result<Model> BuildModel(const ModelSpec& spec, int first, int last) {
  auto model = MakeModel(spec.name, spec.conv);
  if (!model) return model.error();
  if (first < 0) first = 0;
  if (last < 0) last = int(model->layers.size());
  if (spec.weights_path.empty()) {
    InitWeights(*model, spec.seed, first, last);
  } else {
    Status s = LoadWeights(*model, spec.weights_path, first, last);
    if (!s) return s.error();
  }
  return model;
}

void SourceFrame(const Shape& shape, uint64_t seed, uint64_t seq, int distinct, float* out) {
  FillUniform(out, shape.Elements(), seed * 31 + seq % uint64_t(std::max(1, distinct)), 0.0f, 1.0f);
}

SourceImages MakeSourceImages(Shape shape, const SourceOptions& o) {
  SourceImages s;
  s.shape = shape;
  for (int i = 0; i < std::max(1, o.distinct); ++i) {
    s.images.emplace_back(shape.Elements());
    SourceFrame(shape, o.seed, uint64_t(i), o.distinct, s.images.back().data());
  }
  return s;
}

namespace {

bool Stopping(const std::atomic<bool>* stop) { return stop != nullptr && stop->load(); }

}  // namespace

Status RunSource(FrameWriter& out, const SourceImages& source, const SourceOptions& o) {
  const Shape shape = source.shape;
  const std::vector<Buffer>& images = source.images;
  const int64_t period = o.fps > 0 ? int64_t(1e9 / o.fps) : 0;
  int64_t next = NowNs();
  for (int f = 1; f <= o.frames && !Stopping(o.stop); ++f) {
    if (period > 0) {
      // In slices, so a stop is seen within 50 ms however slow the pace.
      while (NowNs() < next && !Stopping(o.stop)) {
        std::this_thread::sleep_for(
            std::chrono::nanoseconds(std::min<int64_t>(next - NowNs(), 50000000)));
      }
      if (Stopping(o.stop)) break;
      next += period;
    }
    FrameMeta meta;
    meta.seq = uint64_t(f);
    meta.shape = shape;
    meta.t_source_ns = NowNs();
    Status s = out.PublishFrom(meta, images[size_t(f) % images.size()].data());
    if (!s && (out.Aborted() || out.Fault())) return s;
    if (!s) spdlog::warn("source: {}", s.error().message);
  }
  return out.Close();
}

Status RunStage(FrameReader& in, FrameWriter& out, Executor& executor, const StageOptions& o,
                StageCounters& counters) {
  const Shape in_shape = executor.InputShape();
  const Shape out_shape = executor.OutputShape();
  auto silent_since = std::chrono::steady_clock::now();
  auto next_report = silent_since + o.idle_report;
  // With a stop to watch, wait for input in short slices.
  const std::chrono::milliseconds slice =
      o.stop != nullptr ? std::min(o.idle_report, std::chrono::milliseconds(100)) : o.idle_report;
  for (;;) {
    if (Stopping(o.stop)) {
      spdlog::info("stage {}: stopping; end-of-stream downstream", o.index);
      return out.Close();
    }
    FrameMeta meta;
    const float* data = nullptr;
    ReadResult r = in.Next(&meta, &data, slice);
    counters.drops.store(in.Drops());
    if (r == ReadResult::kClosed) return out.Close();
    if (r == ReadResult::kBroken) {
      (void)out.Close();
      return *in.Fault();
    }
    if (r == ReadResult::kTimeout) {
      const auto now = std::chrono::steady_clock::now();
      if (now < next_report) continue;
      next_report = now + o.idle_report;
      auto silent = now - silent_since;
      spdlog::info("stage {}: no frames on {} for {} ms", o.index, in.Address(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(silent).count());
      if (o.idle_exit.count() > 0 && silent >= o.idle_exit) {
        (void)out.Close();
        return Error{"stage " + std::to_string(o.index) + ": no input on " + in.Address() +
                     " for " + std::to_string(o.idle_exit.count()) + " ms"};
      }
      continue;
    }
    silent_since = std::chrono::steady_clock::now();
    next_report = silent_since + o.idle_report;
    if (!(meta.shape == in_shape)) {
      spdlog::warn("stage {}: dropped frame {} of shape {}, expected {}", o.index, meta.seq,
                   meta.shape.ToString(), in_shape.ToString());
      continue;
    }
    int64_t t_in = NowNs();
    executor.Run(data, out.Buffer());
    if (o.delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(int64_t(o.delay_ms * 1000)));
    }
    int64_t t_done = NowNs();
    if (meta.stamp_count < uint32_t(kMaxStages)) {
      meta.stamps[2 * meta.stamp_count] = t_in;
      meta.stamps[2 * meta.stamp_count + 1] = t_done;
      ++meta.stamp_count;
    }
    meta.shape = out_shape;
    counters.compute_ns += uint64_t(t_done - t_in);
    if (counters.frames.fetch_add(1) == 0) counters.first_frame_ns = t_done;
    counters.last_frame_ns = t_done;
    Status s = out.Publish(meta);
    counters.reconnects.store(out.Reconnects());
    if (!s && out.Fault()) return s;
    if (!s) {
      ++counters.send_errors;
      spdlog::warn("stage {}: {}", o.index, s.error().message);
    }
  }
}

namespace {

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  size_t k = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

}  // namespace

void SinkAccumulator::Add(const FrameMeta& meta, const float* data, int64_t now) {
  SinkReport& rep = rep_;
  if (rep.frames > 0 && meta.seq <= rep.last_seq) rep.in_order = false;
  uint64_t expected = rep.last_seq + 1;
  if (meta.seq > expected) rep.drops += meta.seq - expected;
  rep.last_seq = std::max(rep.last_seq, meta.seq);
  ++rep.frames;
  rep.checksum += Checksum(data, meta.shape.Elements());
  if (options_.keep_outputs) rep.outputs[meta.seq].assign(data, data + meta.shape.Elements());
  if (rep.frames == uint64_t(options_.warmup) + 1) t_first_ = now;
  if (rep.frames <= uint64_t(options_.warmup)) return;
  if (timed_ > 0) intervals_.push_back(double(now - t_last_) / 1e6);
  t_last_ = now;
  ++timed_;
  latencies_.push_back(double(now - meta.t_source_ns) / 1e6);
  size_t n = meta.stamp_count;
  compute_sum_.resize(std::max(compute_sum_.size(), n), 0.0);
  comm_sum_.resize(std::max(comm_sum_.size(), n), 0.0);
  int64_t prev = meta.t_source_ns;
  for (size_t s = 0; s < n; ++s) {
    comm_sum_[s] += double(meta.stamps[2 * s] - prev) / 1e6;
    compute_sum_[s] += double(meta.stamps[2 * s + 1] - meta.stamps[2 * s]) / 1e6;
    prev = meta.stamps[2 * s + 1];
  }
  sink_comm_sum_ += double(now - prev) / 1e6;
}

SinkReport SinkAccumulator::Finish() {
  SinkReport rep = std::move(rep_);
  if (timed_ > 0) {
    // Frames per second over the intervals between the first and the last timed frame.
    double span = double(t_last_ - t_first_) / 1e9;
    rep.fps = span > 0 && timed_ > 1 ? double(timed_ - 1) / span : 0;
    double median_interval = Percentile(intervals_, 0.5);
    rep.fps_median = median_interval > 0 ? 1000.0 / median_interval : 0;
    rep.latency_p50_ms = Percentile(latencies_, 0.5);
    rep.latency_p99_ms = Percentile(latencies_, 0.99);
    double t = double(timed_);
    double total_compute = 0, total_comm = sink_comm_sum_ / t;
    for (size_t s = 0; s < compute_sum_.size(); ++s) {
      rep.stage_compute_ms.push_back(compute_sum_[s] / t);
      rep.stage_comm_ms.push_back(comm_sum_[s] / t);
      total_compute += rep.stage_compute_ms.back();
      total_comm += rep.stage_comm_ms.back();
    }
    rep.sink_comm_ms = sink_comm_sum_ / t;
    rep.ccr = total_compute > 0 ? total_comm / total_compute : 0;
  }
  return rep;
}

Result<SinkReport> RunSink(FrameReader& in, const SinkOptions& o) {
  SinkAccumulator acc(o);
  auto silent_since = std::chrono::steady_clock::now();
  auto next_log = silent_since + o.log_every;
  for (;;) {
    if (o.log_every.count() > 0 && std::chrono::steady_clock::now() >= next_log) {
      spdlog::info("sink: {} frames, {} dropped so far", acc.frames(), acc.drops());
      next_log += o.log_every;
    }
    FrameMeta meta;
    const float* data = nullptr;
    ReadResult r = in.Next(&meta, &data, std::chrono::milliseconds(100));
    if (r == ReadResult::kClosed) break;
    if (r == ReadResult::kBroken) return *in.Fault();
    if (o.abort != nullptr && o.abort->load()) return Error{"sink: pipeline aborted"};
    if (Stopping(o.stop)) {
      spdlog::info("sink: stopping after {} frames", acc.frames());
      break;
    }
    if (r == ReadResult::kTimeout) {
      if (std::chrono::steady_clock::now() - silent_since > o.timeout) {
        return Error{"sink: no frame on " + in.Address() + " for " +
                     std::to_string(o.timeout.count()) + " ms (a stage died or is stuck)"};
      }
      continue;
    }
    silent_since = std::chrono::steady_clock::now();
    acc.Add(meta, data, NowNs());
  }
  return acc.Finish();
}

namespace {

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
    meta.stamps[0] = NowNs();
    (*exec)->Run(images.images[size_t(f) % images.images.size()].data(), out.data());
    meta.stamps[1] = NowNs();
    meta.stamp_count = 1;
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
  const std::string tag =
      "edgefd-" + std::to_string(getpid()) + "-" + std::to_string(NowNs() % 1000000);
  // Whatever way the run ends (children are reaped first, declared below), its rings and
  // sockets go.
  RunFiles files{shm ? n + 1 : 0, tag, o.work_dir.empty() ? dir : ""};
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

std::string RunReport::Json(const Model& model) const {
  const SinkReport& s = sink;
  const std::string onednn = OneDnnVersion();
  auto rounded = [](const std::vector<double>& v) {
    edgefd::Json out = edgefd::Json::array();
    for (double x : v) out.push_back(RoundTo(x, 4));
    return out;
  };
  edgefd::Json devices_json = edgefd::Json::array();
  for (const OpenedDevice& d : devices) {
    devices_json.push_back({{"resource", d.resource},
                            {"id", d.id},
                            {"path", d.path},
                            {"opened", d.opened},
                            {"mode", d.opened ? (d.read_only ? "r" : "rw") : ""},
                            {"errno", d.error_number},
                            {"error", d.error}});
  }
  const edgefd::Json report = {
      {"model", options.model.name},
      {"input", model.Input().ToString()},
      {"stages", options.stages},
      {"transport", TransportName(options.transport)},
      {"policy", PolicyName(options.policy)},
      {"frames_sent", options.frames},
      {"frames_received", s.frames},
      {"drops", s.drops},
      {"in_order", s.in_order},
      {"fps", RoundTo(s.fps, 2)},
      {"fps_median", RoundTo(s.fps_median, 2)},
      {"latency_p50_ms", RoundTo(s.latency_p50_ms, 3)},
      {"latency_p99_ms", RoundTo(s.latency_p99_ms, 3)},
      {"sink_comm_ms", RoundTo(s.sink_comm_ms, 4)},
      {"ccr", RoundTo(s.ccr, 4)},
      {"checksum", RoundTo(s.checksum, 6)},
      {"wall_s", RoundTo(wall_s, 3)},
      {"stage_compute_ms", rounded(s.stage_compute_ms)},
      {"stage_comm_ms", rounded(s.stage_comm_ms)},
      {"link_drops", link_drops},
      {"plan", PlanJson(model, plan)},
      {"backend", "cpu"},
      {"onednn", onednn.empty() ? edgefd::Json(nullptr) : edgefd::Json(onednn)},
      {"kernels", KernelIsa()},
      {"compute_cpus", compute_cpus},
      {"io_cpus", io_cpus},
      {"pinned", !compute_cpus.empty()},
      {"threads", ThreadChoiceJson(threads)},
      {"devices", std::move(devices_json)}};
  return DumpJson(report);
}

std::string RunReport::Text() const {
  const SinkReport& s = sink;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "%s, %d stage(s) over %s: %.1f fps (median interval: %.1f fps), latency p50 %.2f "
                "ms p99 %.2f ms, CCR %.3f, "
                "%llu/%d frames, %llu dropped, checksum %.4f\n",
                options.model.name.c_str(), options.stages,
                TransportName(options.transport).c_str(), s.fps, s.fps_median, s.latency_p50_ms,
                s.latency_p99_ms, s.ccr, (unsigned long long)s.frames, options.frames,
                (unsigned long long)s.drops, s.checksum);
  std::string out = buf;
  for (size_t i = 0; i < s.stage_compute_ms.size(); ++i) {
    std::snprintf(buf, sizeof buf, "  stage %zu: compute %.3f ms, comm in %.3f ms\n", i,
                  s.stage_compute_ms[i], s.stage_comm_ms[i]);
    out += buf;
  }
  for (const OpenedDevice& d : devices) {
    out += "  device " + d.resource + " " + d.id + ": " + d.Describe() + "\n";
  }
  return out;
}

}  // namespace edgefd::runtime
