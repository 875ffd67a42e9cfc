// What the DRA program says on /metrics and /readyz.
#include "edgefd/dra/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd::dra {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

DraState Running() {
  DraState s;
  s.registration.registered = true;
  s.slices.published = true;
  s.slices.generation = 7;
  s.slices.devices = 9;
  s.plugin.prepare_calls = 3;
  s.plugin.prepare_errors = 1;
  s.prepared_claims = 2;
  return s;
}

TEST(DraMetrics, CountersAndGaugesInThePrometheusFormat) {
  const std::string text = RenderMetrics(Running());
  EXPECT_THAT(text, HasSubstr("# TYPE edgefd_dra_prepare_calls_total counter\n"
                              "edgefd_dra_prepare_calls_total 3\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_dra_prepare_errors_total 1\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE edgefd_dra_pool_generation gauge\n"
                              "edgefd_dra_pool_generation 7\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_dra_pool_devices 9\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_dra_prepared_claims 2\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_dra_registered 1\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_dra_device_taints 0\n"));
}

TEST(DraHealth, ReadyOnceRegisteredAndPublished) {
  DraState state;
  HealthChecks checks = DraHealth([&] { return state; });
  EXPECT_EQ(HealthReply(checks, "/healthz").status, 200);
  HttpReply ready = HealthReply(checks, "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("not registered with the kubelet"));
  state.registration.registered = true;
  ready = HealthReply(checks, "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("ResourceSlices not published"));
  state.slices.published = true;
  EXPECT_EQ(HealthReply(checks, "/readyz").status, 200);
  EXPECT_THAT(HealthReply(checks, "/metrics").body, Not(HasSubstr("edgefd_deviceplugin")));
}

TEST(DraHealth, BothModesWaitForTheDevicePluginToo) {
  bool dp_registered = false;
  HealthChecks dp;
  dp.metrics = [] { return std::string("edgefd_deviceplugin_registered 1\n"); };
  dp.not_ready = [&]() -> std::optional<std::string> {
    if (dp_registered) return std::nullopt;
    return "not registered with the kubelet yet";
  };
  HealthChecks checks = DraHealth([] { return Running(); }, dp);
  HttpReply ready = HealthReply(checks, "/readyz");
  EXPECT_EQ(ready.status, 503);
  EXPECT_THAT(ready.body, HasSubstr("device plugin: not registered"));
  dp_registered = true;
  EXPECT_EQ(HealthReply(checks, "/readyz").status, 200);
  const std::string metrics = HealthReply(checks, "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("edgefd_dra_pool_generation 7"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_deviceplugin_registered 1"));
}

}  // namespace
}  // namespace edgefd::dra
