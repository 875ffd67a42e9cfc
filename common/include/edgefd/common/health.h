#pragma once

// The health and metrics endpoint of every edgefd daemon (the labeller agent, the device
// plugin, a pipeline stage): one set of paths with one meaning.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edgefd/common/http_endpoint.h"
#include "edgefd/common/result.h"

namespace edgefd {

/// What a daemon reports.
struct HealthChecks {
  /// The Prometheus text for /metrics (see PrometheusWriter); unset: /metrics is 404.
  std::function<std::string()> metrics;
  /// Why the daemon is not ready to do its job, or nullopt when it is; unset: always ready.
  std::function<std::optional<std::string>()> not_ready;
};

/// The answer to GET `path`: /healthz 200 "ok" (the process answers), /readyz 200 "ok" or 503
/// with the reason, /metrics 200 with the Prometheus text, anything else 404.
HttpReply HealthReply(const HealthChecks& checks, std::string_view path);

/// Serves HealthReply on `address` ("host:port", "[::1]:port", ":port"; port 0 picks one).
/// Errors name `flag` and the address.
Result<std::unique_ptr<HttpEndpoint>> StartHealthEndpoint(const std::string& address,
                                                          HealthChecks checks,
                                                          const std::string& flag);

}  // namespace edgefd
