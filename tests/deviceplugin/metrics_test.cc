#include "edgefd/deviceplugin/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd::deviceplugin {
namespace {

using ::testing::HasSubstr;

TEST(Metrics, RendersPrometheusTextPerResource) {
  Metrics metrics;
  metrics.SetDevices("edgefd.io/little-cpu", 4, 0);
  metrics.CountAllocate("edgefd.io/little-cpu", true);
  metrics.CountAllocate("edgefd.io/little-cpu", false);
  metrics.CountRegistration("edgefd.io/little-cpu", true);
  metrics.CountKubeletRestart();
  std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE edgefd_deviceplugin_devices gauge\n"));
  EXPECT_THAT(
      text,
      HasSubstr(
          "edgefd_deviceplugin_devices{resource=\"edgefd.io/little-cpu\",health=\"Healthy\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_deviceplugin_allocations_total{resource=\"edgefd.io/"
                              "little-cpu\",result=\"ok\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_deviceplugin_allocations_total{resource=\"edgefd.io/"
                              "little-cpu\",result=\"error\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("edgefd_deviceplugin_kubelet_restarts_total 1\n"));
}

TEST(Metrics, ReadyOnlyWhenEveryResourceIsRegistered) {
  Metrics metrics;
  EXPECT_FALSE(metrics.AllRegistered());
  metrics.SetRegistered("edgefd.io/big-cpu", true);
  metrics.SetRegistered("edgefd.io/little-cpu", false);
  EXPECT_FALSE(metrics.AllRegistered());
  metrics.SetRegistered("edgefd.io/little-cpu", true);
  EXPECT_TRUE(metrics.AllRegistered());
}

}  // namespace
}  // namespace edgefd::deviceplugin
