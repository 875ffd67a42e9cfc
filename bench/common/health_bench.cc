// /healthz round trip on the endpoint every daemon serves, alone and beside slow-loris clients
// (connected, an unfinished request sent, then silent). The target: a slow or silent client
// never delays /healthz by more than 100 ms (issue 12); the max counter is the worst probe.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "edgefd/common/health.h"
#include "edgefd/common/http_endpoint.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/testing/http.h"

namespace {

edgefd::UniqueFd SlowClient(uint16_t port) {
  edgefd::UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string part = "GET /metrics HTTP/1.1\r\nHost: slow\r\n";
    send(fd.get(), part.data(), part.size(), MSG_NOSIGNAL);
  }
  return fd;
}

void BM_Healthz(benchmark::State& state) {
  edgefd::HttpEndpointLimits limits;
  limits.request_deadline = std::chrono::seconds(600);  // the slow clients stay throughout
  auto ep = edgefd::HttpEndpoint::Start(
      "127.0.0.1:0", [](std::string_view path) { return edgefd::HealthReply({}, path); },
      "--metrics-addr", limits);
  if (!ep) {
    state.SkipWithError(ep.error().message.c_str());
    return;
  }
  std::vector<edgefd::UniqueFd> slow;
  for (int i = 0; i < state.range(0); ++i) slow.push_back(SlowClient((*ep)->port()));
  double worst_ms = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    std::string reply = edgefd::testing::HttpGet((*ep)->port(), "/healthz");
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    worst_ms = std::max(worst_ms, ms);
    if (reply.rfind("HTTP/1.1 200", 0) != 0) state.SkipWithError("no 200 from /healthz");
  }
  state.counters["max_ms"] = worst_ms;
}
BENCHMARK(BM_Healthz)->Arg(0)->Arg(16)->Arg(31)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
