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

// What a stage measured, kept within what a link accepts (kMaxDurationNs).
int64_t ClampDuration(int64_t ns) { return std::clamp<int64_t>(ns, 0, kMaxDurationNs); }

}  // namespace

Status RunSource(FrameWriter& out, const SourceImages& source, const SourceOptions& o) {
  const Shape shape = source.shape;
  const std::vector<Buffer>& images = source.images;
  const int64_t period = o.fps > 0 ? int64_t(1e9 / o.fps) : 0;
  int64_t next = NowNs();
  int64_t last_send_ns = 0;
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
    meta.source_clock = ClockId();
    meta.source_send_ns = last_send_ns;
    Status s = out.PublishFrom(meta, images[size_t(f) % images.size()].data());
    last_send_ns = ClampDuration(NowNs() - meta.t_source_ns);
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
  int64_t wait_from = NowNs();
  int64_t last_send_ns = 0;
  StageLog log(o.index, o.log_every);
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
      log.Maybe(counters);
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
    const int64_t t_in = NowNs();
    executor.Run(data, out.Buffer());
    if (o.delay_ms > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(int64_t(o.delay_ms * 1000)));
    }
    const int64_t t_done = NowNs();
    StageTimes times{ClampDuration(t_in - wait_from), ClampDuration(t_done - t_in), last_send_ns};
    if (meta.stage_count < uint32_t(kMaxStages)) meta.stages[meta.stage_count++] = times;
    meta.shape = out_shape;
    Status s = out.Publish(meta);
    wait_from = NowNs();
    last_send_ns = ClampDuration(wait_from - t_done);
    counters.Count(times.wait_ns, times.compute_ns, last_send_ns, t_done);
    counters.reconnects.store(out.Reconnects());
    log.Maybe(counters);
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
  std::lock_guard lock(mu_);
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
  auto keep = [](std::deque<double>& window, double v) {
    if (window.size() == kWindow) window.pop_front();
    window.push_back(v);
  };
  if (timed_ > 0) keep(intervals_, double(now - t_last_) / 1e6);
  t_last_ = now;
  ++timed_;
  // The source's time is on the source's clock: subtracted only from a reading of the same.
  if (SameClockAsSource(meta)) {
    keep(latencies_, double(now - meta.t_source_ns) / 1e6);
  } else {
    ++foreign_clock_;
  }
  // Every other figure is a duration measured by the stage that owns it.
  const size_t n = std::min<size_t>(meta.stage_count, kMaxStages);
  compute_sum_.resize(std::max(compute_sum_.size(), n), 0.0);
  comm_sum_.resize(std::max(comm_sum_.size(), n), 0.0);
  wait_sum_.resize(std::max(wait_sum_.size(), n), 0.0);
  int64_t send_in = meta.source_send_ns;
  for (size_t s = 0; s < n; ++s) {
    const StageTimes& t = meta.stages[s];
    comm_sum_[s] += double(send_in) / 1e6;
    compute_sum_[s] += double(t.compute_ns) / 1e6;
    wait_sum_[s] += double(t.wait_ns) / 1e6;
    send_in = t.send_ns;
  }
  sink_comm_sum_ += double(send_in) / 1e6;
}

SinkReport SinkAccumulator::SnapshotLocked() const {
  SinkReport rep;
  rep.frames = rep_.frames;
  rep.drops = rep_.drops;
  rep.last_seq = rep_.last_seq;
  rep.in_order = rep_.in_order;
  rep.checksum = rep_.checksum;
  if (timed_ == 0) {
    rep.latency_note = "not measured: no frame past the warm-up";
    return rep;
  }
  // Frames per second over the intervals between the first and the last timed frame.
  double span = double(t_last_ - t_first_) / 1e9;
  rep.fps = span > 0 && timed_ > 1 ? double(timed_ - 1) / span : 0;
  std::vector<double> intervals(intervals_.begin(), intervals_.end());
  double median_interval = Percentile(std::move(intervals), 0.5);
  rep.fps_median = median_interval > 0 ? 1000.0 / median_interval : 0;
  rep.latency_measured = foreign_clock_ == 0;
  if (!rep.latency_measured) {
    rep.latency_note =
        "not measured: the source runs on another clock (another machine or time namespace) "
        "than the sink; the per-stage times are each measured on their own stage's clock";
  } else {
    std::vector<double> latencies(latencies_.begin(), latencies_.end());
    rep.latency_p50_ms = Percentile(latencies, 0.5);
    rep.latency_p99_ms = Percentile(std::move(latencies), 0.99);
  }
  double t = double(timed_);
  double total_compute = 0, total_comm = sink_comm_sum_ / t;
  for (size_t s = 0; s < compute_sum_.size(); ++s) {
    rep.stage_compute_ms.push_back(compute_sum_[s] / t);
    rep.stage_comm_ms.push_back(comm_sum_[s] / t);
    rep.stage_wait_ms.push_back(wait_sum_[s] / t);
    total_compute += rep.stage_compute_ms.back();
    total_comm += rep.stage_comm_ms.back();
  }
  rep.sink_comm_ms = sink_comm_sum_ / t;
  rep.ccr = total_compute > 0 ? total_comm / total_compute : 0;
  return rep;
}

SinkReport SinkAccumulator::Snapshot() const {
  std::lock_guard lock(mu_);
  return SnapshotLocked();
}

SinkReport SinkAccumulator::Finish() {
  std::lock_guard lock(mu_);
  SinkReport rep = SnapshotLocked();
  rep.outputs = std::move(rep_.outputs);
  return rep;
}

uint64_t SinkAccumulator::frames() const {
  std::lock_guard lock(mu_);
  return rep_.frames;
}

uint64_t SinkAccumulator::drops() const {
  std::lock_guard lock(mu_);
  return rep_.drops;
}

namespace {

// The sink's periodic line: what a pod that never ends prints instead of a final report.
void LogSinkProgress(const SinkReport& r, uint64_t frames_before, double seconds) {
  std::string stages;
  for (size_t s = 0; s < r.stage_compute_ms.size(); ++s) {
    stages += fmt::format("; stage {}: compute {:.2f} ms, send in {:.2f} ms, wait {:.2f} ms", s,
                          r.stage_compute_ms[s], r.stage_comm_ms[s], r.stage_wait_ms[s]);
  }
  const double fps = seconds > 0 ? double(r.frames - frames_before) / seconds : 0.0;
  spdlog::info("sink: {} frames, {} dropped; {:.1f} fps over the last {:.0f} s; latency {}{}",
               r.frames, r.drops, fps, seconds,
               r.latency_measured
                   ? fmt::format("p50 {:.2f} ms p99 {:.2f} ms", r.latency_p50_ms, r.latency_p99_ms)
                   : r.latency_note,
               stages);
}

}  // namespace

Result<SinkReport> RunSink(FrameReader& in, const SinkOptions& o, SinkAccumulator* live) {
  SinkAccumulator own(o);
  SinkAccumulator& acc = live != nullptr ? *live : own;
  auto silent_since = std::chrono::steady_clock::now();
  auto last_log = silent_since;
  uint64_t frames_at_log = 0;
  for (;;) {
    if (o.log_every.count() > 0 && std::chrono::steady_clock::now() >= last_log + o.log_every) {
      const auto now = std::chrono::steady_clock::now();
      SinkReport so_far = acc.Snapshot();
      LogSinkProgress(so_far, frames_at_log, std::chrono::duration<double>(now - last_log).count());
      frames_at_log = so_far.frames;
      last_log = now;
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
