// What a run reports: the JSON of `run --json` and the text summary.
#include <cstdio>
#include <string>

#include "edgefd/common/json.h"
#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/sink_report_json.h"
#include "edgefd/runtime/stage_args.h"

namespace edgefd::runtime {

edgefd::Json SinkReportJson(const SinkReport& s) {
  auto rounded = [](const std::vector<double>& v) {
    edgefd::Json out = edgefd::Json::array();
    for (double x : v) out.push_back(RoundTo(x, 4));
    return out;
  };
  // Latency is null, and "latency" says why, where the source ran on another clock than the
  // sink's.
  auto latency = [&s](double ms) {
    return s.latency_measured ? edgefd::Json(RoundTo(ms, 3)) : edgefd::Json();
  };
  return {{"frames_received", s.frames},
          {"drops", s.drops},
          {"in_order", s.in_order},
          {"fps", RoundTo(s.fps, 2)},
          {"fps_median", RoundTo(s.fps_median, 2)},
          {"latency_p50_ms", latency(s.latency_p50_ms)},
          {"latency_p99_ms", latency(s.latency_p99_ms)},
          {"latency", s.latency_measured ? "measured on the sink's clock" : s.latency_note},
          {"sink_comm_ms", RoundTo(s.sink_comm_ms, 4)},
          {"ccr", RoundTo(s.ccr, 4)},
          {"checksum", RoundTo(s.checksum, 6)},
          {"stage_compute_ms", rounded(s.stage_compute_ms)},
          {"stage_comm_ms", rounded(s.stage_comm_ms)},
          {"stage_wait_ms", rounded(s.stage_wait_ms)}};
}

std::string RunReport::Json(const Model& model) const {
  const std::string onednn = OneDnnVersion();
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
  edgefd::Json report = {{"model", options.model.name},
                         {"input", model.Input().ToString()},
                         {"stages", options.stages},
                         {"transport", TransportName(options.transport)},
                         {"policy", PolicyName(options.policy)},
                         {"frames_sent", options.frames}};
  report.update(SinkReportJson(sink));
  report.update(
      edgefd::Json{{"wall_s", RoundTo(wall_s, 3)},
                   {"link_drops", link_drops},
                   {"plan", PlanJson(model, plan)},
                   {"backend", "cpu"},
                   {"onednn", onednn.empty() ? edgefd::Json(nullptr) : edgefd::Json(onednn)},
                   {"kernels", KernelIsa()},
                   {"compute_cpus", compute_cpus},
                   {"io_cpus", io_cpus},
                   {"pinned", !compute_cpus.empty()},
                   {"threads", ThreadChoiceJson(threads)},
                   {"devices", std::move(devices_json)}});
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
    std::snprintf(buf, sizeof buf, "  stage %zu: compute %.3f ms, comm in %.3f ms, wait %.3f ms\n",
                  i, s.stage_compute_ms[i], s.stage_comm_ms[i],
                  i < s.stage_wait_ms.size() ? s.stage_wait_ms[i] : 0.0);
    out += buf;
  }
  for (const OpenedDevice& d : devices) {
    out += "  device " + d.resource + " " + d.id + ": " + d.Describe() + "\n";
  }
  return out;
}

}  // namespace edgefd::runtime
