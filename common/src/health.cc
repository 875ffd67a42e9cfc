#include "edgefd/common/health.h"

#include "edgefd/common/prometheus.h"

namespace edgefd {

HttpReply HealthReply(const HealthChecks& checks, std::string_view path) {
  if (path == "/healthz") return {200, "text/plain", "ok\n"};
  if (path == "/readyz") {
    std::optional<std::string> reason = checks.not_ready ? checks.not_ready() : std::nullopt;
    if (!reason) return {200, "text/plain", "ok\n"};
    return {503, "text/plain", "not ready: " + *reason + "\n"};
  }
  if (path == "/metrics" && checks.metrics) {
    return {200, std::string(PrometheusWriter::kContentType), checks.metrics()};
  }
  return {404, "text/plain", "not found: try /healthz, /readyz or /metrics\n"};
}

Result<std::unique_ptr<HttpEndpoint>> StartHealthEndpoint(const std::string& address,
                                                          HealthChecks checks,
                                                          const std::string& flag) {
  return HttpEndpoint::Start(
      address,
      [checks = std::move(checks)](std::string_view path) { return HealthReply(checks, path); },
      flag);
}

}  // namespace edgefd
