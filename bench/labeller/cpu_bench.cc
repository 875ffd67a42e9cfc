// Full discovery + labels over the CPU fixtures (the foundation budget: median < 2 ms per
// node), and the CPU topology alone from a real blob. Run:
//   build/bench/labeller/cpu_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <filesystem>

#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/paths.h"

namespace {

void DiscoverFixture(benchmark::State& state, const char* fixture) {
  edgefd::DiscoveryOptions options;
  options.root = edgefd::testing::TestdataDir() / "cpu" / fixture;
  for (auto _ : state) {
    auto report = edgefd::Discover(options);
    if (!report) {
      state.SkipWithError(report.error().message.c_str());
      return;
    }
    benchmark::DoNotOptimize(edgefd::RenderLabels(report->inventory));
  }
}
BENCHMARK_CAPTURE(DiscoverFixture, rk3588, "rk3588")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(DiscoverFixture, odroid_xu4, "odroid-xu4")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(DiscoverFixture, intel_hybrid, "intel-hybrid")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(DiscoverFixture, x86_server_32cpu, "x86-server")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(DiscoverFixture, devicetree_fallback, "devicetree-fallback")
    ->Unit(benchmark::kMicrosecond);

void CpuTopologyFromBlob(benchmark::State& state) {
  auto path = edgefd::testing::SharedDevicetrees() / "rock-5b.dtb";
  auto tree = edgefd::ReadDeviceTreeBlobFile(path);
  if (!tree) {
    state.SkipWithError("shared/devicetrees/rock-5b.dtb not found");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(edgefd::CpuTopologyFromDeviceTree(*tree, nullptr));
}
BENCHMARK(CpuTopologyFromBlob)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
