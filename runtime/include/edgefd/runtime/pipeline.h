#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
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

/// One stage: take the newest input, run the executor into the output link, stamp, send.
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
};
Status RunStage(FrameReader& in, FrameWriter& out, Executor& executor, const StageOptions& options,
                StageCounters& counters);

/// What the sink measured.
struct SinkReport {
  uint64_t frames = 0;
  uint64_t drops = 0;  ///< sequence numbers that never arrived
  uint64_t last_seq = 0;
  bool in_order = true;
  double fps = 0;
  double fps_median = 0;  ///< 1 / median interval between frames: robust on a shared machine
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
  std::vector<double> stage_compute_ms;            ///< mean per stage
  std::vector<double> stage_comm_ms;               ///< mean transfer+queueing into each stage
  double sink_comm_ms = 0;                         ///< last stage to sink
  double ccr = 0;                                  ///< total comm / total compute
  double checksum = 0;                             ///< sum of every output value received
  std::map<uint64_t, std::vector<float>> outputs;  ///< when kept
};
struct SinkOptions {
  int warmup = 3;  ///< frames excluded from fps and latency
  bool keep_outputs = false;
  std::chrono::milliseconds timeout{30000};  ///< give up when nothing arrives this long
  std::atomic<bool>* abort = nullptr;        ///< set by the caller to stop waiting
  std::chrono::milliseconds log_every{0};    ///< log frames and drops so far (0: never)
  /// When set and it becomes true, the sink stops and reports what it received so far.
  const std::atomic<bool>* stop = nullptr;
};
Result<SinkReport> RunSink(FrameReader& in, const SinkOptions& options);

/// The sink's bookkeeping, fed one frame at a time (RunSink and the monolithic loop).
class SinkAccumulator {
 public:
  explicit SinkAccumulator(const SinkOptions& options) : options_(options) {}
  void Add(const FrameMeta& meta, const float* data, int64_t now_ns);
  SinkReport Finish();
  uint64_t frames() const { return rep_.frames; }
  uint64_t drops() const { return rep_.drops; }

 private:
  SinkOptions options_;
  SinkReport rep_;
  std::vector<double> latencies_, intervals_, compute_sum_, comm_sum_;
  double sink_comm_sum_ = 0;
  uint64_t timed_ = 0;
  int64_t t_first_ = 0, t_last_ = 0;
};

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
