// Device-plugin figures against the stand-in kubelet over real gRPC on unix sockets:
//   allocate      Allocate round trip (2 cores), median and p99      target p99 < 1 ms
//   change        hardware change reported → new list in the kubelet's
//                 ListAndWatch stream, median and p99                 target p99 < 50 ms
//   reregister    kubelet restart (sockets wiped, kubelet.sock recreated) →
//                 every resource registered and streaming again      target < 1 s
//   idle_rss      resident memory of the real binary, registered and idle  target < 15 MiB
//   udev          under umockdev (real libudev): uevent sent → new list in the kubelet's
//                 ListAndWatch stream, through HotplugWatcher's default coalescing and a
//                 full Discover(); a Coral USB plugged and pulled in turn  target p99 < 50 ms
//                 (runs itself again with umockdev's preload library for this part)
// Usage: deviceplugin_bench [--json] [--quick] [--verbose]
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/fed_registry.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"
#include "edgefd/testing/measure.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/umockdev_testbed.h"

namespace edgefd::deviceplugin {
namespace {

using testing::BigLittleInventory;
using testing::FakeKubelet;
using testing::TempDir;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::duration<double, std::milli>;

constexpr const char* kNcs = "edgefd.io/movidius-ncs";
constexpr const char* kLittle = "edgefd.io/little-cpu";

bool Streaming(const FakeKubelet::Endpoint& ep) { return !ep.lists.empty(); }

std::string HealthOf(const v1beta1::ListAndWatchResponse& list, const std::string& id) {
  for (const auto& d : list.devices()) {
    if (d.id() == id) return d.health();
  }
  return "";
}

// The umockdev part, in a process started with umockdev's preload library. Prints
// "n median p99 max" in milliseconds.
int UdevPhase(int events) {
  edgefd::testing::Testbed tb;
  if (!tb.Plug("host.umockdev")) return 1;
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  if (!kubelet.Start()) return 1;
  InventoryRegistry registry;
  HotplugWatcher watcher{WatchOptions{}};
  DiscoveryOptions options;
  options.root = tb.Root();
  options.udev = true;
  InventoryFeed feed(
      registry,
      [&]() -> Result<Inventory> {
        auto report = Discover(options);
        if (!report) return report.error();
        return std::move(report->inventory);
      },
      watcher);
  if (!feed.Start() || watcher.mode() != "udev monitor") {
    std::cerr << "udev monitor unavailable under umockdev\n";
    return 1;
  }
  PluginServerOptions server_options;
  server_options.kubelet_dir = dir.path();
  PluginServer server(registry, server_options);
  if (!server.Start()) return 1;
  const std::string kTpu = "edgefd.io/edgetpu";
  const std::string stick = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  std::vector<double> latency;
  for (int i = 0; i <= events; ++i) {
    const bool plug = i % 2 == 0;
    Clock::time_point t0;
    if (plug) {
      t0 = Clock::now();  // umockdev writes the device, then sends its uevent
      if (!tb.Plug("coral-usb-runtime.umockdev")) return 1;
    } else {
      tb.Unplug(stick, [&] { t0 = Clock::now(); });
    }
    const std::string want = plug ? "Healthy" : "Unhealthy";
    Clock::time_point arrived{};
    if (!kubelet.WaitFor(kTpu, [&](const auto& ep) {
          if (ep.lists.empty() || HealthOf(ep.lists.back(), "1-3") != want) return false;
          arrived = ep.list_times.back();
          return true;
        })) {
      std::cerr << "udev event " << i << " never reached the stream\n";
      return 1;
    }
    if (i > 0) latency.push_back(Ms(arrived - t0).count());  // the first also registers
  }
  server.Stop();
  feed.Stop();
  testing::LatencyStats st = testing::Summarise(latency);
  std::printf("%zu %.4f %.4f %.4f\n", st.n, st.median, st.p99, st.max);
  return 0;
}

int Main(int argc, char** argv) {
  bool json = false, quick = false, verbose = false;
  if (argc == 3 && std::string(argv[1]) == "--udev-phase") {
    spdlog::set_level(spdlog::level::warn);
    return UdevPhase(std::atoi(argv[2]));
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--json")
      json = true;
    else if (a == "--quick")
      quick = true;
    else if (a == "--verbose")
      verbose = true;
    else {
      std::cerr << "usage: deviceplugin_bench [--json] [--quick] [--verbose]\n";
      return 2;
    }
  }
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  const int n_alloc = quick ? 500 : 5000;
  const int n_change = quick ? 100 : 1000;
  const int n_restart = quick ? 10 : 50;

  TempDir dir;
  FakeKubelet kubelet(dir.path());
  if (!kubelet.Start()) return 1;
  testing::FedRegistry hardware(BigLittleInventory(2));
  InventoryRegistry& registry = hardware.registry();
  PluginServerOptions options;
  options.kubelet_dir = dir.path();
  PluginServer server(registry, options);
  if (auto s = server.Start(); !s) {
    std::cerr << s.error().message << "\n";
    return 1;
  }
  for (const char* r : {"edgefd.io/big-cpu", kLittle, kNcs}) {
    if (!kubelet.WaitFor(r, Streaming)) {
      std::cerr << "no registration of " << r << "\n";
      return 1;
    }
  }

  // Allocate: what the kubelet does at container creation.
  std::vector<double> alloc;
  {
    auto stub = kubelet.Dial(kLittle);
    v1beta1::AllocateRequest req;
    req.add_container_requests()->add_devices_ids("cpu0");
    req.mutable_container_requests(0)->add_devices_ids("cpu1");
    for (int i = 0; i < n_alloc + 100; ++i) {
      v1beta1::AllocateResponse resp;
      grpc::ClientContext ctx;
      auto t0 = Clock::now();
      auto s = stub->Allocate(&ctx, req, &resp);
      auto t1 = Clock::now();
      if (!s.ok()) return 1;
      if (i >= 100) alloc.push_back(Ms(t1 - t0).count());  // first 100 warm up
    }
  }

  // Change → ListAndWatch: stick 1-1.2 unplugged / plugged in turn.
  std::vector<double> change;
  for (int i = 0; i < n_change; ++i) {
    const bool present = i % 2 == 1;
    const std::string want = present ? "Healthy" : "Unhealthy";
    auto t0 = Clock::now();
    hardware.Set(BigLittleInventory(present ? 2 : 1));
    Clock::time_point arrived{};
    if (!kubelet.WaitFor(kNcs, [&](const auto& ep) {
          if (ep.lists.empty() || HealthOf(ep.lists.back(), "1-1.2") != want) return false;
          arrived = ep.list_times.back();
          return true;
        })) {
      std::cerr << "change " << i << " never reached the stream\n";
      return 1;
    }
    change.push_back(Ms(arrived - t0).count());
  }

  // Kubelet restarts.
  std::vector<double> rereg;
  for (int i = 0; i < n_restart; ++i) {
    int before = kubelet.Get(kNcs)->registrations;
    auto t0 = Clock::now();
    kubelet.Restart();
    Clock::time_point last{};
    for (const char* r : {"edgefd.io/big-cpu", kLittle, kNcs}) {
      if (!kubelet.WaitFor(r, [&](const auto& ep) {
            if (ep.registrations <= before || ep.lists.empty() ||
                ep.list_times.back() < ep.registered_at) {
              return false;
            }
            last = std::max(last, ep.list_times.back());
            return true;
          })) {
        std::cerr << "restart " << i << ": " << r << " not registered again\n";
        return 1;
      }
    }
    rereg.push_back(Ms(last - t0).count());
  }
  server.Stop();
  kubelet.Stop();

  // Idle RSS of the real binary, registered with three resources.
  long rss_kib = -1;
  {
    TempDir d2;
    FakeKubelet k2(d2.path());
    k2.Start();
    const std::string bin = testing::DevicePluginBin();
    const std::string inv = (testing::TestdataDir() / "deviceplugin/rk3399-ncs.yaml").string();
    testing::Child plugin({bin, "--kubelet-dir", d2.path().string(), "--inventory", inv,
                           "--metrics-address", "127.0.0.1:0", "--log-level", "warn"});
    bool ok = plugin.started();
    for (const char* r : {"edgefd.io/big-cpu", kLittle, kNcs}) ok = ok && k2.WaitFor(r, Streaming);
    if (ok) {
      // Idle: past the 10 s after start-up at which the program gives back what start-up
      // left (memory.h: IdleUntilStop).
      std::this_thread::sleep_for(std::chrono::seconds(11));
      rss_kib = testing::ProcStatus(plugin.pid(), "VmRSS");
    }
    plugin.Terminate();
  }

  // udev → ListAndWatch under umockdev, in a child with the preload library.
  testing::LatencyStats u;
  {
    auto phase = testing::RunCommand({fs::read_symlink("/proc/self/exe").string(), "--udev-phase",
                                      std::to_string(quick ? 50 : 500)},
                                     {"LD_PRELOAD=" + testing::UmockdevPreload()});
    if (phase.exit_code != 0 ||
        std::sscanf(phase.out.c_str(), "%zu %lf %lf %lf", &u.n, &u.median, &u.p99, &u.max) != 4) {
      std::cerr << "the umockdev part failed: " << phase.err << "\n";
    }
  }

  using testing::LatencyJson;
  using testing::Summarise;
  testing::LatencyStats a = Summarise(alloc), c = Summarise(change), r = Summarise(rereg);
  if (json) {
    const Json report = {{"allocate_ms", LatencyJson(a, 4)},
                         {"change_to_list_ms", LatencyJson(c, 4)},
                         {"reregister_ms", LatencyJson(r, 3)},
                         {"idle_rss_mib", RoundTo(rss_kib / 1024.0, 2)},
                         {"udev_to_list_ms", LatencyJson(u, 4)}};
    std::printf("%s\n", DumpJson(report).c_str());
  } else {
    std::printf(
        "allocate (2 cores)        n=%zu median %.3f ms  p99 %.3f ms  (target p99 < 1 ms)\n", a.n,
        a.median, a.p99);
    std::printf(
        "change -> ListAndWatch    n=%zu median %.3f ms  p99 %.3f ms  (target p99 < 50 ms)\n", c.n,
        c.median, c.p99);
    std::printf(
        "kubelet restart -> registered+streaming  n=%zu median %.1f ms  max %.1f ms  (target < 1 "
        "s)\n",
        r.n, r.median, r.max);
    std::printf("idle RSS (real binary, 3 resources)       %.1f MiB  (target < 15 MiB)\n",
                rss_kib / 1024.0);
    std::printf(
        "udev event -> ListAndWatch (umockdev)     n=%zu median %.3f ms  p99 %.3f ms  (target p99 "
        "< 50 ms)\n",
        u.n, u.median, u.p99);
  }
  return 0;
}

}  // namespace
}  // namespace edgefd::deviceplugin

int main(int argc, char** argv) { return edgefd::deviceplugin::Main(argc, argv); }
