#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/backend.h"
#include "edgefd/runtime/devices.h"
#include "edgefd/runtime/metrics.h"
#include "edgefd/runtime/model.h"
#include "edgefd/runtime/partition.h"
#include "edgefd/runtime/threads.h"
#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

/// Which model, and how its weights are made.
struct ModelSpec {
  std::string name = "conv";
  ConvModelOptions conv;
  uint64_t seed = 42;
  std::string weights_path;  ///< flat float32 file; empty: seeded weights

  bool operator==(const ModelSpec&) const = default;
};

/// Builds the model with weights for layers [first, last) only (-1: all).
Result<Model> BuildModel(const ModelSpec& spec, int first = -1, int last = -1);

/// The deterministic synthetic frame `seq` of the source (pixel intensities in [0, 1)).
void SourceFrame(const Shape& shape, uint64_t seed, uint64_t seq, int distinct, float* out);

/// Source: publishes `frames` frames (seq 1..frames) cycling `distinct` pre-generated images,
/// at `fps` (0: as fast as the link takes them), then closes the link.
struct SourceOptions {
  int frames = 100;
  int distinct = 4;
  double fps = 0;
  uint64_t seed = 42;
  /// When set and it becomes true (SIGTERM: edgefd/common/program.h StopRequested), the
  /// source stops sending and closes the link: end-of-stream for everything downstream.
  const std::atomic<bool>* stop = nullptr;
};
/// The pre-generated images a source cycles through. In-process links hand out pointers into
/// them, so they must outlive every stage of the run.
struct SourceImages {
  Shape shape;
  std::vector<Buffer> images;
};
SourceImages MakeSourceImages(Shape shape, const SourceOptions& options);
Status RunSource(FrameWriter& out, const SourceImages& images, const SourceOptions& options);

/// One stage: take the newest input, run the executor into the output link, add its own times
/// (StageTimes) to the frame, send.
struct StageOptions {
  int index = 0;
  /// Extra milliseconds per frame, to emulate a slow device or link (tests, demos).
  double delay_ms = 0;
  /// How long to wait for input before reporting that upstream is silent.
  std::chrono::milliseconds idle_report{5000};
  /// Stop (as if closed) after this long without input; 0 waits forever.
  std::chrono::milliseconds idle_exit{0};
  /// When set and it becomes true, the stage stops (within 100 ms while it waits for input)
  /// and sends end-of-stream downstream, as if its input had closed.
  const std::atomic<bool>* stop = nullptr;
  /// How often to log fps and per-frame times (0: never).
  std::chrono::milliseconds log_every{0};
};
Status RunStage(FrameReader& in, FrameWriter& out, Executor& executor, const StageOptions& options,
                StageCounters& counters);

/// What the sink measured. Every figure is measured on one clock: per-stage times on the clock
/// of the stage that owns them (FrameMeta's StageTimes), end-to-end latency on the sink's, and
/// only where the source ran on the same clock (another machine, or another time namespace,
/// keeps a monotonic clock hours apart).
struct SinkReport {
  uint64_t frames = 0;
  uint64_t drops = 0;  ///< sequence numbers that never arrived
  uint64_t last_seq = 0;
  bool in_order = true;
  double fps = 0;
  double fps_median = 0;  ///< 1 / median interval between frames: robust on a shared machine
  /// Whether latency was measured: every timed frame came from a source on the sink's clock.
  /// When not, latency_p50_ms and latency_p99_ms are 0 and mean nothing.
  bool latency_measured = false;
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  std::vector<double> stage_compute_ms;  ///< mean per stage
  /// Mean per stage: the send into it, on its upstream's clock (the source's for stage 0):
  /// transfer plus waiting for the stage to take the frame.
  std::vector<double> stage_comm_ms;
  std::vector<double> stage_wait_ms;               ///< mean per stage: idle, waiting for input
  double sink_comm_ms = 0;                         ///< the last stage's send to the sink
  double ccr = 0;                                  ///< total comm / total compute
  double checksum = 0;                             ///< sum of every output value received
  std::map<uint64_t, std::vector<float>> outputs;  ///< when kept

  /// "" when latency was measured, else why not (for reports and logs).
  std::string latency_note;
};
struct SinkOptions {
  int warmup = 3;  ///< frames excluded from fps and latency
  bool keep_outputs = false;
  std::chrono::milliseconds timeout{30000};  ///< give up when nothing arrives this long
  std::atomic<bool>* abort = nullptr;        ///< set by the caller to stop waiting
  /// Log frames, fps, latency and per-stage times so far this often (0: never).
  std::chrono::milliseconds log_every{0};
  /// When set and it becomes true, the sink stops and reports what it received so far.
  const std::atomic<bool>* stop = nullptr;
};

/// The sink's bookkeeping, fed one frame at a time (RunSink and the monolithic loop). Add and
/// Snapshot may be called from different threads (a /metrics endpoint reads a running sink).
/// Percentiles cover the last kWindow frames, so a sink that runs for ever stays small.
class SinkAccumulator {
 public:
  static constexpr size_t kWindow = 1 << 16;

  explicit SinkAccumulator(const SinkOptions& options) : options_(options) {}
  void Add(const FrameMeta& meta, const float* data, int64_t now_ns);
  /// The figures so far (without the kept outputs).
  SinkReport Snapshot() const;
  /// The figures, and the kept outputs; call once, at the end.
  SinkReport Finish();
  uint64_t frames() const;
  uint64_t drops() const;

 private:
  SinkReport SnapshotLocked() const;

  mutable std::mutex mu_;
  SinkOptions options_;
  SinkReport rep_;
  std::deque<double> latencies_, intervals_;
  std::vector<double> compute_sum_, comm_sum_, wait_sum_;
  double sink_comm_sum_ = 0;
  uint64_t timed_ = 0;
  uint64_t foreign_clock_ = 0;  // timed frames whose source ran on another clock
  int64_t t_first_ = 0, t_last_ = 0;
};

/// Receives until end-of-stream (or stop, abort, timeout). With `live`, frames are counted
/// there (which the caller may read while this runs, e.g. for /metrics) and `options` are
/// those `live` was made with.
Result<SinkReport> RunSink(FrameReader& in, const SinkOptions& options,
                           SinkAccumulator* live = nullptr);

/// Prometheus text of a sink's figures so far: frames, drops, fps, latency where measured,
/// per-stage compute, send and wait times.
std::string SinkPrometheusText(const SinkReport& report);

/// How the stages of a `run` are connected.
enum class Transport {
  kInproc,  ///< threads of this process over in-memory mailboxes
  kShm,     ///< one process per stage over /dev/shm rings
  kGrpc,    ///< one process per stage over gRPC on unix sockets
};
/// "inproc", "shm", "grpc", and back.
std::string TransportName(Transport transport);
std::optional<Transport> ParseTransport(std::string_view name);

/// A whole pipeline on this machine (`edgefd-pipeline run`).
struct RunOptions {
  ModelSpec model;
  int stages = 1;
  Transport transport = Transport::kInproc;
  int frames = 100;
  int warmup = 3;
  Policy policy = Policy::kLatest;
  SourceOptions source;
  /// Compute threads per stage; 0: chosen from the cpuset, the cgroup's CPU quota and the
  /// allocated cores, shared among the stages (ChooseThreads).
  int threads = 0;
  std::string root = "/";              ///< where /proc/self/cgroup and /sys/fs/cgroup are read
  PartitionOptions partition;          ///< stages is taken from `stages`
  bool profile = false;                ///< partition by measured per-layer time
  std::vector<double> stage_delay_ms;  ///< per stage, see StageOptions::delay_ms
  bool keep_outputs = false;
  std::string self_exe;  ///< edgefd-pipeline, for shm/grpc child processes
  std::string work_dir;  ///< sockets live here (default: a fresh /tmp dir)
  Allocation allocation;
  /// When set and it becomes true, the source stops and the run winds down: the stages and
  /// the sink finish with what is in flight, child stages are stopped, the report covers the
  /// frames received.
  const std::atomic<bool>* stop = nullptr;
  /// The run fails when no frame reaches the sink for this long (a stage died or is stuck).
  std::chrono::milliseconds sink_timeout{30000};
};
struct RunReport {
  RunOptions options;
  PartitionPlan plan;
  SinkReport sink;
  std::vector<uint64_t> link_drops;  ///< per link into stage i (in-process runs)
  double wall_s = 0;
  std::vector<int> compute_cpus;
  std::vector<int> io_cpus;
  std::vector<OpenedDevice> devices;
  ThreadChoice threads;  ///< compute threads per stage and why
  std::string Json(const Model& model) const;
  std::string Text() const;
};
Result<RunReport> RunPipeline(const RunOptions& options);

}  // namespace edgefd::runtime
