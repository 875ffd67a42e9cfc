#include "edgefd/common/prometheus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "edgefd/common/health.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;

TEST(PrometheusWriter, WritesFamiliesAndSamples) {
  PrometheusWriter out;
  out.Family("edgefd_devices", "gauge", "Devices.")
      .Sample("edgefd_devices", {{"resource", "edgefd.io/big-cpu"}, {"health", "Healthy"}}, 4);
  out.Counter("edgefd_events_total", "Events.", 12);
  EXPECT_EQ(out.text(),
            "# HELP edgefd_devices Devices.\n"
            "# TYPE edgefd_devices gauge\n"
            "edgefd_devices{resource=\"edgefd.io/big-cpu\",health=\"Healthy\"} 4\n"
            "# HELP edgefd_events_total Events.\n"
            "# TYPE edgefd_events_total counter\n"
            "edgefd_events_total 12\n");
}

TEST(PrometheusWriter, ValuesReadBackExactlyAndNonFiniteAreSpelledOut) {
  PrometheusWriter out;
  out.Sample("a", 0.25).Sample("b", 1732900000.5).Sample("c", std::nan(""));
  out.Sample("d", std::numeric_limits<double>::infinity());
  out.Sample("e", -std::numeric_limits<double>::infinity()).Sample("f", 18446744073709551615.0);
  EXPECT_EQ(out.text(), "a 0.25\nb 1732900000.5\nc NaN\nd +Inf\ne -Inf\nf 18446744073709551616\n");
}

TEST(PrometheusWriter, EscapesLabelValues) {
  PrometheusWriter out;
  out.Sample("x", {{"path", "a\"b\\c\nd"}}, 1);
  EXPECT_EQ(out.text(), "x{path=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(HealthReply, OneMeaningPerPath) {
  bool ready = false;
  HealthChecks checks;
  checks.metrics = [] { return std::string("m 1\n"); };
  checks.not_ready = [&]() -> std::optional<std::string> {
    if (ready) return std::nullopt;
    return "waiting for the kubelet";
  };
  EXPECT_EQ(HealthReply(checks, "/healthz").status, 200);
  HttpReply not_ready = HealthReply(checks, "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_THAT(not_ready.body, HasSubstr("waiting for the kubelet"));
  ready = true;
  EXPECT_EQ(HealthReply(checks, "/readyz").status, 200);
  HttpReply metrics = HealthReply(checks, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.body, "m 1\n");
  EXPECT_EQ(metrics.content_type, PrometheusWriter::kContentType);
  EXPECT_EQ(HealthReply(checks, "/nope").status, 404);
  // Without checks: alive and ready, no metrics.
  EXPECT_EQ(HealthReply({}, "/readyz").status, 200);
  EXPECT_EQ(HealthReply({}, "/metrics").status, 404);
}

}  // namespace
}  // namespace edgefd
