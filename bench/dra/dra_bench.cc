// DRA figures against the stand-ins, over the same wires as in a cluster (HTTPS to the API
// server, gRPC on unix sockets to the kubelet):
//   slice_update   hardware change reported → the node's pool at the API server shows it
//                  (registry → SlicePublisher → LIST + PUT over TLS), median and p99
//                                                                       target p99 < 1 s
//   prepare        NodePrepareResources of a fresh claim of two big cores (kubelet → plugin →
//                  GET claim over TLS → per-claim CDI spec and checkpoint written with fsync),
//                  median and p99
//   prepare_again  the same claim again (answered from the checkpoint), median and p99
//   unprepare      NodeUnprepareResources, median and p99
//   idle memory    resident memory (and its anonymous part) of the real binary, registered
//                  and idle, in each mode: device-plugin (target RSS < 15 MiB), dra, both;
//                  the median of --repetitions N starts (default 1)
// Usage: dra_bench [--json] [--quick] [--verbose] [--idle-only] [--repetitions N]
//                  [--bin PATH] [--smaps DIR]
//   --idle-only    only the idle memory
//   --bin PATH     measure this edgefd-deviceplugin (another build's, to compare side by side;
//                  it execs the edgefd-deviceplugin-dra next to it)
//   --smaps DIR    keep each idle process's /proc/PID/smaps as DIR/<mode>-<n>.smaps
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>
#include <vector>

#include "edgefd/dra/claims.h"
#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/publisher.h"
#include "edgefd/kube/client.h"
#include "edgefd/testing/fake_apiserver.h"
#include "edgefd/testing/fake_dra_kubelet.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/fed_registry.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"
#include "edgefd/testing/measure.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using ::edgefd::testing::Child;
using ::edgefd::testing::DraInventory;
using ::edgefd::testing::FakeApiServer;
using ::edgefd::testing::FakeDraKubelet;
using ::edgefd::testing::FakeKubelet;
using ::edgefd::testing::FedRegistry;
using ::edgefd::testing::LatencyJson;
using ::edgefd::testing::LatencyStats;
using ::edgefd::testing::ProcStatus;
using ::edgefd::testing::Summarise;
using ::edgefd::testing::TempDir;
using ::edgefd::testing::TestPki;
using ::edgefd::testing::WriteFile;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::duration<double, std::milli>;

constexpr char kNode[] = "rock5b";

// Resident memory, and the anonymous part of it (heap, stacks: what the process itself costs;
// the rest is shared library text other processes on the node map too).
struct Memory {
  double rss_mib = -1, anon_mib = -1;
};

Memory MemoryOf(pid_t pid) {
  return {ProcStatus(pid, "VmRSS") / 1024.0, ProcStatus(pid, "RssAnon") / 1024.0};
}

// A TLS API server with a token and node kNode, and a kubeconfig for it.
struct Cluster {
  explicit Cluster(const TestPki& pki, const fs::path& dir)
      : server(FakeApiServer::Options{pki.server_cert, pki.server_key, pki.ca_cert}) {
    server.SetToken("bench-token");
    server.AddNode(kNode, {});
    kubeconfig = dir / "kubeconfig";
    WriteFile(kubeconfig, server.Kubeconfig(pki.ca_cert, "bench-token"));
  }
  std::unique_ptr<kube::ApiTransport> Client() {
    auto config = kube::LoadKubeconfig(kubeconfig);
    auto client = kube::MakeSharedKubeClient(*config);
    return client ? std::move(*client) : nullptr;
  }
  FakeApiServer server;
  fs::path kubeconfig;
};

bool PoolHas(FakeApiServer& server, const std::string& device) {
  for (const Json& d : server.resources().PoolDevices(kNode)) {
    if (d.value("name", "") == device) return true;
  }
  return false;
}

LatencyStats SliceUpdates(const TestPki& pki, int n) {
  TempDir dir;
  Cluster cluster(pki, dir.path());
  auto api = cluster.Client();
  FedRegistry hw(DraInventory(2));
  SlicePublisher::Options options;
  options.node = kNode;
  options.taints = TaintMode::kOff;
  SlicePublisher publisher(hw.registry(), *api, ResourceApi("v1"), options, nullptr);
  publisher.Start();
  if (!publisher.WaitForGeneration(1, std::chrono::seconds(10))) return {};
  std::vector<double> times;
  for (int i = 0; i < n; ++i) {
    const bool present = i % 2 == 1;  // stick 1-1.2 pulled, then plugged back in
    auto t0 = Clock::now();
    hw.Set(DraInventory(present ? 2 : 1));
    if (!cluster.server.WaitFor(
            [&] { return PoolHas(cluster.server, "movidius-ncs-1-1-2") == present; },
            std::chrono::seconds(10))) {
      std::cerr << "change " << i << " never reached the API server\n";
      return {};
    }
    times.push_back(Ms(Clock::now() - t0).count());
  }
  publisher.Stop();
  return Summarise(times);
}

struct PrepareFigures {
  LatencyStats prepare, again, unprepare;
};

PrepareFigures Prepares(const TestPki& pki, int n) {
  TempDir dir;
  Cluster cluster(pki, dir.path());
  auto api = cluster.Client();
  FedRegistry hw(DraInventory(2));
  fs::create_directories(dir.path() / "registry");
  fs::create_directories(dir.path() / "cdi");
  deviceplugin::CdiSpecDir cdi(dir.path() / "cdi");
  ClaimPreparer preparer(hw.registry(), *api, ResourceApi("v1"), cdi,
                         Checkpoint(dir.path() / "plugins" / "edgefd.io" / "checkpoint.json"),
                         kNode);
  if (!preparer.Start()) return {};
  KubeletPluginOptions options;
  options.registry_dir = dir.path() / "registry";
  options.plugins_dir = dir.path() / "plugins";
  KubeletPlugin plugin(preparer, options);
  FakeDraKubelet kubelet(options.registry_dir);
  if (!kubelet.Start() || !plugin.Start() ||
      !kubelet.WaitFor("edgefd.io", [](const auto& p) { return p.registered; })) {
    return {};
  }
  std::vector<double> prepare, again, unprepare;
  for (int i = 0; i < n + 10; ++i) {
    // Claim UIDs are Kubernetes object UIDs: the plugin refuses anything else.
    const std::string uid = fmt::format("00000000-0000-4000-8000-{:012d}", i);
    const std::string name = "claim-" + std::to_string(i);
    cluster.server.resources().AddClaim(
        "default", name, uid,
        {{"cores", "edgefd.io", kNode, "cpu4"}, {"cores", "edgefd.io", kNode, "cpu5"}});
    FakeDraKubelet::Claim claim{"default", uid, name};
    auto t0 = Clock::now();
    auto a = kubelet.Prepare("edgefd.io", {claim});
    auto t1 = Clock::now();
    auto b = kubelet.Prepare("edgefd.io", {claim});
    auto t2 = Clock::now();
    auto c = kubelet.Unprepare("edgefd.io", {claim});
    auto t3 = Clock::now();
    if (!a || !a->at(uid).error.empty() || !b || !c) {
      std::cerr << "prepare " << i << " failed\n";
      return {};
    }
    if (i < 10) continue;  // warm-up: connections, caches
    prepare.push_back(Ms(t1 - t0).count());
    again.push_back(Ms(t2 - t1).count());
    unprepare.push_back(Ms(t3 - t2).count());
  }
  plugin.Stop();
  return {Summarise(prepare), Summarise(again), Summarise(unprepare)};
}

// How the idle processes are measured.
struct IdleOptions {
  std::string bin;  // the edgefd-deviceplugin to start
  fs::path smaps;   // where to copy each process's smaps; empty: nowhere
  int repetitions = 1;
};

// Idle memory of `edgefd-deviceplugin --mode <mode>`, registered with the stand-ins; the
// `n`th start.
Memory IdleMemory(const TestPki& pki, const std::string& mode, const IdleOptions& o, int n) {
  TempDir dir;
  Cluster cluster(pki, dir.path());
  for (const char* d : {"registry", "plugins", "cdi", "device-plugins"}) {
    fs::create_directories(dir.path() / d);
  }
  FakeKubelet dp(dir.path() / "device-plugins");
  FakeDraKubelet dra(dir.path() / "registry");
  if (!dp.Start() || !dra.Start()) return {};
  const std::string& bin = o.bin;
  const std::string inventory = (::edgefd::testing::TestdataDir() / "dra/rock5b.yaml").string();
  std::vector<std::string> args = {bin,
                                   "--mode",
                                   mode,
                                   "--inventory",
                                   inventory,
                                   "--kubelet-dir",
                                   (dir.path() / "device-plugins").string(),
                                   "--metrics-addr",
                                   "127.0.0.1:0",
                                   "--log-level",
                                   "warn"};
  if (mode != "device-plugin") {
    const std::vector<std::string> dra_args = {"--node-name",
                                               kNode,
                                               "--kubeconfig",
                                               cluster.kubeconfig.string(),
                                               "--kubelet-registry-dir",
                                               (dir.path() / "registry").string(),
                                               "--kubelet-plugins-dir",
                                               (dir.path() / "plugins").string(),
                                               "--cdi-dir",
                                               (dir.path() / "cdi").string()};
    args.insert(args.end(), dra_args.begin(), dra_args.end());
  }
  Child plugin(args);
  bool ok = true;
  if (mode != "dra") {
    ok = dp.WaitFor("edgefd.io/big-cpu", [](const auto& ep) { return !ep.lists.empty(); });
  }
  if (mode != "device-plugin") {
    ok = ok && dra.WaitFor("edgefd.io", [](const auto& p) { return p.registered; }) &&
         cluster.server.WaitFor([&] { return PoolHas(cluster.server, "cpu7"); });
  }
  Memory memory;
  if (ok) {
    // Idle: past the 10 s after start-up at which the program gives back what start-up left
    // (memory.h: IdleUntilStop).
    std::this_thread::sleep_for(std::chrono::seconds(11));
    memory = MemoryOf(plugin.pid());
    if (!o.smaps.empty()) {
      // /proc files report size 0: read them as a stream, not by copy_file.
      std::ifstream in(fs::path("/proc") / std::to_string(plugin.pid()) / "smaps");
      std::ofstream out(o.smaps / (mode + "-" + std::to_string(n) + ".smaps"));
      out << in.rdbuf();
      if (!in || !out) std::cerr << "smaps of " << mode << ": cannot copy\n";
    }
  }
  plugin.Terminate();
  return memory;
}

int Main(int argc, char** argv) {
  bool json_out = false, quick = false, verbose = false, idle_only = false;
  IdleOptions idle;
  idle.bin = ::edgefd::testing::DevicePluginBin();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--json") {
      json_out = true;
    } else if (a == "--quick") {
      quick = true;
    } else if (a == "--verbose") {
      verbose = true;
    } else if (a == "--idle-only") {
      idle_only = true;
    } else if (a == "--repetitions" && has_value) {
      idle.repetitions = std::max(1, std::atoi(argv[++i]));
    } else if (a == "--bin" && has_value) {
      idle.bin = argv[++i];
    } else if (a == "--smaps" && has_value) {
      idle.smaps = argv[++i];
    } else {
      std::cerr << "usage: dra_bench [--json] [--quick] [--verbose] [--idle-only] "
                   "[--repetitions N] [--bin PATH] [--smaps DIR]\n";
      return 2;
    }
  }
  spdlog::set_level(verbose ? spdlog::level::info : spdlog::level::warn);
  TempDir pki_dir;
  auto pki = TestPki::Create(pki_dir.path());
  if (!pki) {
    std::cerr << pki.error().message << "\n";
    return 1;
  }
  const int n = quick ? 100 : 1000;
  LatencyStats slices;
  PrepareFigures prepares;
  if (!idle_only) {
    slices = SliceUpdates(*pki, n);
    prepares = Prepares(*pki, quick ? 100 : 500);
    if (slices.n == 0 || prepares.prepare.n == 0) return 1;
  }
  std::map<std::string, Memory> memory;
  // Starts of the three modes interleave, so a change in the machine's load touches each alike.
  std::map<std::string, std::vector<Memory>> runs;
  for (int r = 0; r < idle.repetitions; ++r) {
    for (const char* mode : {"device-plugin", "dra", "both"}) {
      runs[mode].push_back(IdleMemory(*pki, mode, idle, r));
    }
  }
  for (auto& [mode, list] : runs) {
    auto median = [&list](double Memory::*field) {
      std::vector<double> v;
      for (const Memory& m : list) v.push_back(m.*field);
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    memory[mode] = {median(&Memory::rss_mib), median(&Memory::anon_mib)};
  }

  if (json_out) {
    Json out = {{"idle_rss_mib", Json::object()}, {"idle_anonymous_mib", Json::object()}};
    if (!idle_only) {
      out["slice_update_ms"] = LatencyJson(slices, 3);
      out["prepare_ms"] = LatencyJson(prepares.prepare, 3);
      out["prepare_again_ms"] = LatencyJson(prepares.again, 3);
      out["unprepare_ms"] = LatencyJson(prepares.unprepare, 3);
    }
    for (const auto& [mode, m] : memory) {
      out["idle_rss_mib"][mode] = RoundTo(m.rss_mib, 2);
      out["idle_anonymous_mib"][mode] = RoundTo(m.anon_mib, 2);
    }
    std::cout << DumpJson(out) << "\n";
    return 0;
  }
  auto line = [](const char* what, const LatencyStats& s, const char* target) {
    std::printf("%-44s n=%zu median %.3f ms  p99 %.3f ms  %s\n", what, s.n, s.median, s.p99,
                target);
  };
  if (!idle_only) {
    line("change -> ResourceSlice at the API server", slices, "(target p99 < 1 s)");
    line("NodePrepareResources (2 cores, fresh)", prepares.prepare, "");
    line("NodePrepareResources (again, checkpoint)", prepares.again, "");
    line("NodeUnprepareResources", prepares.unprepare, "");
  }
  for (const auto& [mode, m] : memory) {
    std::printf("idle, --mode %-13s RSS %.1f MiB, of it anonymous %.1f MiB%s\n", mode.c_str(),
                m.rss_mib, m.anon_mib, mode == "device-plugin" ? "  (target RSS < 15 MiB)" : "");
  }
  return 0;
}

}  // namespace
}  // namespace edgefd::dra

int main(int argc, char** argv) { return edgefd::dra::Main(argc, argv); }
