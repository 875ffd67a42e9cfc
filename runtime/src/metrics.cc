#include "edgefd/runtime/metrics.h"

#include <cstdio>

namespace edgefd::runtime {

std::string PrometheusText(const StageCounters& c, int stage) {
  uint64_t frames = c.frames.load();
  double span_s = double(c.last_frame_ns.load() - c.first_frame_ns.load()) / 1e9;
  double fps = frames > 1 && span_s > 0 ? double(frames - 1) / span_s : 0.0;
  double stage_ms = frames ? double(c.compute_ns.load()) / 1e6 / double(frames) : 0.0;
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "# HELP edgefd_pipeline_frames_total Frames this stage processed.\n"
                "# TYPE edgefd_pipeline_frames_total counter\n"
                "edgefd_pipeline_frames_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_drops_total Frames replaced unread at this stage's input.\n"
                "# TYPE edgefd_pipeline_drops_total counter\n"
                "edgefd_pipeline_drops_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_send_errors_total Failed sends to the next stage.\n"
                "# TYPE edgefd_pipeline_send_errors_total counter\n"
                "edgefd_pipeline_send_errors_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_reconnects_total Re-established links to the next stage.\n"
                "# TYPE edgefd_pipeline_reconnects_total counter\n"
                "edgefd_pipeline_reconnects_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_fps Frames per second over the run so far.\n"
                "# TYPE edgefd_pipeline_fps gauge\n"
                "edgefd_pipeline_fps{stage=\"%d\"} %.3f\n"
                "# HELP edgefd_pipeline_stage_ms Mean compute milliseconds per frame.\n"
                "# TYPE edgefd_pipeline_stage_ms gauge\n"
                "edgefd_pipeline_stage_ms{stage=\"%d\"} %.4f\n",
                stage, (unsigned long long)frames, stage, (unsigned long long)c.drops.load(), stage,
                (unsigned long long)c.send_errors.load(), stage,
                (unsigned long long)c.reconnects.load(), stage, fps, stage, stage_ms);
  return buf;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(int port, const StageCounters* counters,
                                                            int stage) {
  auto endpoint = HttpEndpoint::Start(
      ":" + std::to_string(port),
      [counters, stage](std::string_view path) {
        HttpReply reply;
        if (path == "/metrics") {
          reply.content_type = "text/plain; version=0.0.4";
          reply.body = PrometheusText(*counters, stage);
        } else if (path == "/healthz") {
          reply.body = "ok\n";
        } else {
          reply.status = 404;
          reply.body = "try /metrics\n";
        }
        return reply;
      },
      "--metrics-port");
  if (!endpoint) return endpoint.error();
  return std::unique_ptr<MetricsServer>(new MetricsServer(std::move(*endpoint)));
}

}  // namespace edgefd::runtime
