#include "edgefd/runtime/metrics.h"

#include "edgefd/common/prometheus.h"

namespace edgefd::runtime {

std::string PrometheusText(const StageCounters& c, int stage) {
  const uint64_t frames = c.frames.load();
  const double span_s = double(c.last_frame_ns.load() - c.first_frame_ns.load()) / 1e9;
  const double fps = frames > 1 && span_s > 0 ? double(frames - 1) / span_s : 0.0;
  const double stage_ms = frames ? double(c.compute_ns.load()) / 1e6 / double(frames) : 0.0;
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
  metric("edgefd_pipeline_stage_ms", "gauge", "Mean compute milliseconds per frame.", stage_ms);
  return out.text();
}

HealthChecks StageHealth(const StageCounters& counters, int stage) {
  HealthChecks checks;
  checks.metrics = [&counters, stage] { return PrometheusText(counters, stage); };
  return checks;  // ready while it runs: a stage waits for its upstream by design
}

}  // namespace edgefd::runtime
