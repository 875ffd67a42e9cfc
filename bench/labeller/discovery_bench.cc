#include <benchmark/benchmark.h>

#include "edgefd/discovery.h"
#include "edgefd/labels.h"

// Filled in with the devicetree corpus benches (issue 2).
static void BM_DiscoverThisMachine(benchmark::State& state) {
  edgefd::DiscoveryOptions options;
  for (auto _ : state) {
    auto report = edgefd::Discover(options);
    benchmark::DoNotOptimize(edgefd::RenderLabels(report->inventory));
  }
}
BENCHMARK(BM_DiscoverThisMachine);
BENCHMARK_MAIN();
