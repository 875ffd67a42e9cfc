// One full discovery + label rendering: over each real blob in shared/devicetrees (as
// `--dtb` would), over each blob written out in the kernel's directory form (as a live
// /sys/firmware/devicetree/base), and over this machine's own root. Target: median < 2 ms.
// Discover/live-dir-kept/* is what the agent runs on a hardware event: a Discoverer that keeps
// the tree it read (it cannot change with a USB hotplug), so only CPUs and udev are read again.
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

// Times `run` (a discovery) plus label rendering per iteration.
template <typename Run>
void Measure(benchmark::State& state, Run run) {
  size_t labels = 0;
  for (auto _ : state) {
    auto report = run();
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

void RunDiscovery(benchmark::State& state, const edgefd::DiscoveryOptions& options) {
  Measure(state, [&] { return edgefd::Discover(options); });
}

// What the agent runs on each hardware event after the first: the kept tree, fresh CPUs.
void RunKeptDiscovery(benchmark::State& state, const edgefd::DiscoveryOptions& options) {
  edgefd::Discoverer discoverer(options);
  Measure(state, [&] { return discoverer.Run(); });
  state.counters["tree_reads"] = static_cast<double>(discoverer.devicetree_reads());
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
    benchmark::RegisterBenchmark(("Discover/live-dir-kept/" + blob.stem().string()).c_str(),
                                 [live](benchmark::State& s) { RunKeptDiscovery(s, live); })
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
