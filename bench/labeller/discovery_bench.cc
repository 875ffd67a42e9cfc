// One full discovery + label rendering: over each real blob in shared/devicetrees (as
// `--dtb` would), over each blob written out in the kernel's directory form (as a live
// /sys/firmware/devicetree/base), and over this machine's own root. Target: median < 2 ms.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/testing/dt_directory_form.h"
#include "edgefd/testing/paths.h"

namespace {

namespace fs = std::filesystem;

void RunDiscovery(benchmark::State& state, const edgefd::DiscoveryOptions& options) {
  size_t labels = 0;
  for (auto _ : state) {
    auto report = edgefd::Discover(options);
    if (!report.ok()) {
      state.SkipWithError(report.error().message.c_str());
      return;
    }
    edgefd::Labels rendered = edgefd::RenderLabels(report->inventory);
    labels = rendered.size();
    benchmark::DoNotOptimize(rendered);
  }
  state.counters["labels"] = static_cast<double>(labels);
}

}  // namespace

int main(int argc, char** argv) {
  fs::path corpus = edgefd::testing::SharedDevicetrees();
  fs::path live_root = fs::path("/dev/shm") / ("edgefd-bench-" + std::to_string(getpid()));
  std::vector<fs::path> blobs;
  if (fs::is_directory(corpus)) {
    for (const auto& entry : fs::directory_iterator(corpus)) {
      if (entry.path().extension() == ".dtb") blobs.push_back(entry.path());
    }
  }
  std::sort(blobs.begin(), blobs.end());
  for (const fs::path& blob : blobs) {
    edgefd::DiscoveryOptions dtb;
    dtb.root = "/nonexistent-root";
    dtb.dtb = blob;
    benchmark::RegisterBenchmark(("Discover/dtb/" + blob.stem().string()).c_str(),
                                 [dtb](benchmark::State& s) { RunDiscovery(s, dtb); })
        ->Unit(benchmark::kMicrosecond);
    auto tree = edgefd::ReadDeviceTreeBlobFile(blob);
    if (!tree.ok()) continue;
    edgefd::DiscoveryOptions live;
    live.root = live_root / blob.stem();
    edgefd::testing::WriteDirectoryForm(*tree, live.root / "sys/firmware/devicetree/base");
    benchmark::RegisterBenchmark(("Discover/live-dir/" + blob.stem().string()).c_str(),
                                 [live](benchmark::State& s) { RunDiscovery(s, live); })
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("Discover/this-machine", [](benchmark::State& s) {
    RunDiscovery(s, edgefd::DiscoveryOptions{});
  })->Unit(benchmark::kMicrosecond);

  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  fs::remove_all(live_root, ec);
  return 0;
}
