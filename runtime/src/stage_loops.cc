// The loops every stage runs, whatever carries its frames: the source's, a compute stage's and
// the sink's (with what the sink measures), and the model a stage builds for its layers.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/pipeline.h"

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

}  // namespace edgefd::runtime
