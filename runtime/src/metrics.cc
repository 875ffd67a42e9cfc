#include "edgefd/runtime/metrics.h"

#include <spdlog/spdlog.h>

#include "edgefd/common/prometheus.h"
#include "edgefd/runtime/pipeline.h"

namespace edgefd::runtime {

void StageCounters::Count(int64_t wait, int64_t compute, int64_t send, int64_t done_ns) {
  wait_ns += uint64_t(wait);
  compute_ns += uint64_t(compute);
  send_ns += uint64_t(send);
  if (frames.fetch_add(1) == 0) first_frame_ns = done_ns;
  last_frame_ns = done_ns;
}

std::string PrometheusText(const StageCounters& c, int stage) {
  const uint64_t frames = c.frames.load();
  const double span_s = double(c.last_frame_ns.load() - c.first_frame_ns.load()) / 1e9;
  const double fps = frames > 1 && span_s > 0 ? double(frames - 1) / span_s : 0.0;
  auto per_frame_ms = [frames](const std::atomic<uint64_t>& ns) {
    return frames ? double(ns.load()) / 1e6 / double(frames) : 0.0;
  };
  const std::string label = std::to_string(stage);
  PrometheusWriter out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    out.Family(name, type, help).Sample(name, {{"stage", label}}, value);
  };
  metric("edgefd_pipeline_frames_total", "counter", "Frames this stage processed.", frames);
  metric("edgefd_pipeline_drops_total", "counter", "Frames replaced unread at this stage's input.",
         c.drops.load());
  metric("edgefd_pipeline_send_errors_total", "counter", "Failed sends to the next stage.",
         c.send_errors.load());
  metric("edgefd_pipeline_reconnects_total", "counter", "Re-established links to the next stage.",
         c.reconnects.load());
  metric("edgefd_pipeline_fps", "gauge", "Frames per second over the run so far.", fps);
  metric("edgefd_pipeline_stage_ms", "gauge", "Mean compute milliseconds per frame.",
         per_frame_ms(c.compute_ns));
  metric("edgefd_pipeline_send_ms", "gauge",
         "Mean milliseconds per frame sending to the next stage (this stage's clock).",
         per_frame_ms(c.send_ns));
  metric("edgefd_pipeline_wait_ms", "gauge",
         "Mean milliseconds per frame waiting for input (idle: upstream is slower).",
         per_frame_ms(c.wait_ns));
  return out.text();
}

HealthChecks StageHealth(const StageCounters& counters, int stage) {
  HealthChecks checks;
  checks.metrics = [&counters, stage] { return PrometheusText(counters, stage); };
  return checks;  // ready while it runs: a stage waits for its upstream by design
}

StageLog::StageLog(int stage, std::chrono::milliseconds every)
    : stage_(stage),
      every_(every),
      next_(std::chrono::steady_clock::now() + every),
      since_(std::chrono::steady_clock::now()) {}

void StageLog::Maybe(const StageCounters& c) {
  if (every_.count() <= 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  const uint64_t frames = c.frames.load(), compute = c.compute_ns.load(), wait = c.wait_ns.load(),
                 send = c.send_ns.load();
  const uint64_t n = frames - frames_;
  const double seconds = std::chrono::duration<double>(now - since_).count();
  auto ms = [n](uint64_t now_ns, uint64_t then_ns) {
    return n ? double(now_ns - then_ns) / 1e6 / double(n) : 0.0;
  };
  spdlog::info(
      "stage {}: {:.1f} fps over the last {:.0f} s ({} frames, {} in all); per frame: compute "
      "{:.2f} ms, send {:.2f} ms, waiting for input {:.2f} ms",
      stage_, seconds > 0 ? double(n) / seconds : 0.0, seconds, n, frames, ms(compute, compute_ns_),
      ms(send, send_ns_), ms(wait, wait_ns_));
  frames_ = frames;
  compute_ns_ = compute;
  wait_ns_ = wait;
  send_ns_ = send;
  since_ = now;
  next_ = now + every_;
}

std::string SinkPrometheusText(const SinkReport& r) {
  PrometheusWriter out;
  out.Counter("edgefd_pipeline_sink_frames_total", "Frames the sink received.", double(r.frames));
  out.Counter("edgefd_pipeline_sink_drops_total", "Sequence numbers that never reached the sink.",
              double(r.drops));
  out.Gauge("edgefd_pipeline_sink_fps", "Frames per second at the sink over the run so far.",
            r.fps);
  out.Gauge("edgefd_pipeline_sink_latency_measured",
            "1 when the source runs on the sink's clock and latency is measured, else 0.",
            r.latency_measured ? 1 : 0);
  if (r.latency_measured) {
    out.Family("edgefd_pipeline_sink_latency_ms", "gauge",
               "End-to-end latency percentiles over the last frames (source and sink on one "
               "clock).")
        .Sample("edgefd_pipeline_sink_latency_ms", {{"quantile", "0.5"}}, r.latency_p50_ms)
        .Sample("edgefd_pipeline_sink_latency_ms", {{"quantile", "0.99"}}, r.latency_p99_ms);
  }
  auto per_stage = [&](const char* name, const char* help, const std::vector<double>& values) {
    out.Family(name, "gauge", help);
    for (size_t s = 0; s < values.size(); ++s) {
      out.Sample(name, {{"stage", std::to_string(s)}}, values[s]);
    }
  };
  per_stage("edgefd_pipeline_sink_stage_compute_ms",
            "Mean compute milliseconds per frame of each stage (the stage's clock).",
            r.stage_compute_ms);
  per_stage("edgefd_pipeline_sink_stage_send_in_ms",
            "Mean milliseconds per frame of the send into each stage (its upstream's clock).",
            r.stage_comm_ms);
  per_stage("edgefd_pipeline_sink_stage_wait_ms",
            "Mean milliseconds per frame each stage waited for input (the stage's clock).",
            r.stage_wait_ms);
  out.Gauge("edgefd_pipeline_sink_comm_ms",
            "Mean milliseconds per frame of the last stage's send to the sink (its clock).",
            r.sink_comm_ms);
  out.Gauge("edgefd_pipeline_sink_ccr", "Communication to computation ratio.", r.ccr);
  return out.text();
}

}  // namespace edgefd::runtime
