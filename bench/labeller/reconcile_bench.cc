// The labelling agent's two targets (issue 5):
// - BM_UdevEventToPatch: a Coral USB stick plugged into / pulled out of a umockdev testbed
//   until the merge patch reaches the test API server: udev event, the HotplugWatcher's
//   coalescing, real discovery over libudev, the patch over TLS on loopback. Target p99 <
//   100 ms. The program re-runs itself with umockdev's preload library for this.
// - BM_EventToPatch: the same from a change notification on (no udev), over the Jetson Nano
//   fixture root, to separate the agent's own share.
// - BM_RulesChangeToLabels: a new version of a rules ConfigMap (the kubelet's `..data` swap)
//   until the patch with the new rule's label reaches the test API server (issue 18 #4).
// - BM_IdleRss: resident memory of a running `edgefd-labeller` daemon after it converged
//   and went idle (target < 15 MiB). The dry run's peak RSS is dryrun_rss's.
//   EDGEFD_BENCH_LABELLER=PATH measures another build's edgefd-labeller (side by side).
// Run: build/bench/labeller/reconcile_bench  (add --benchmark_format=json for a report)
#include <benchmark/benchmark.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

#include "edgefd/agent/reconcile.h"
#include "edgefd/common/memory.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/rules_reload.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/testing/fake_apiserver.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/measure.h"
#include "edgefd/testing/umockdev_testbed.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using namespace edgefd;
using namespace edgefd::testing;

const fs::path kRoot = TestdataDir() / "roots/jetson-nano-blog";

// One PKI, server and kubeconfig for the whole program.
struct Setup {
  TestPki pki;
  fs::path dir;
  std::unique_ptr<FakeApiServer> server;
  fs::path kubeconfig;

  static Setup& Get() {
    static Setup* setup = [] {
      auto* s = new Setup;
      s->dir = MakeTempDir("edgefd-bench");
      auto pki = TestPki::Create(s->dir);
      if (!pki) std::abort();
      s->pki = *pki;
      s->server = std::make_unique<FakeApiServer>(
          FakeApiServer::Options{s->pki.server_cert, s->pki.server_key, {}});
      s->server->SetToken("bench-token");
      WriteFile(s->dir / "token", "bench-token\n");
      s->kubeconfig = s->dir / "kubeconfig";
      WriteFile(s->kubeconfig, KubeconfigYaml(s->server->url(), ReadFile(s->pki.ca_cert),
                                              "    tokenFile: token\n"));
      return s;
    }();
    return *setup;
  }

  kube::KubeConfig Config() const {
    kube::KubeConfig c;
    c.server = server->url();
    c.ca_pem = ReadFile(pki.ca_cert);
    c.token_file = dir / "token";
    c.source = "bench";
    return c;
  }
};

// Waits for the next accepted PATCH after `patches` of them and returns when it arrived,
// or nullopt after 20 s.
std::optional<std::chrono::steady_clock::time_point> NextPatchArrival(FakeApiServer& server,
                                                                      size_t patches) {
  if (!server.WaitFor([&] { return server.Count("PATCH", 200) > patches; })) return std::nullopt;
  auto requests = server.Requests();
  return std::find_if(requests.rbegin(), requests.rend(),
                      [](const auto& r) { return r.method == "PATCH" && r.status == 200; })
      ->at;
}

// One latency sample: from `t0` to the patch's arrival.
void Record(benchmark::State& state, std::vector<double>& ms,
            std::chrono::steady_clock::time_point t0,
            std::chrono::steady_clock::time_point arrived) {
  double elapsed = std::chrono::duration<double>(arrived - t0).count();
  state.SetIterationTime(elapsed);
  ms.push_back(elapsed * 1e3);
}

void ReportPercentiles(benchmark::State& state, const std::vector<double>& ms) {
  const LatencyStats stats = Summarise(ms);
  state.counters["p50_ms"] = stats.median;
  state.counters["p99_ms"] = stats.p99;
  state.counters["max_ms"] = stats.max;
}

void BM_EventToPatch(benchmark::State& state) {
  Setup& s = Setup::Get();
  s.server->AddNode("bench-node", {{"kubernetes.io/hostname", "bench-node"}});
  auto api = kube::MakeKubeClient(s.Config());
  if (!api) {
    state.SkipWithError(api.error().message.c_str());
    return;
  }
  AgentMetrics metrics;
  NodeLabeller labeller(**api, "bench-node", &metrics);
  // Real discovery of the fixture root; the camera count stands for the device that was
  // plugged in, so every event has something to patch.
  std::atomic<int> cameras{0};
  DiscoveryOptions options;
  options.root = kRoot;
  Agent::DiscoverFn discover = [&]() -> Result<Labels> {
    auto report = Discover(options);
    if (!report) return report.error();
    Labels labels = RenderLabels(report->inventory);
    labels["edgefd.io/camera"] = "true";
    labels["edgefd.io/camera.count"] = std::to_string(cameras.load());
    return labels;
  };
  Agent::Options agent_options;
  agent_options.resync = std::chrono::hours(1);
  Agent agent(discover, labeller, metrics, agent_options);
  ManualChangeSource changes;
  std::thread runner([&] { (void)agent.Run(&changes); });
  s.server->WaitFor([&] { return metrics.ready.load(); });

  std::vector<double> ms;
  for (auto _ : state) {
    size_t patches = s.server->Count("PATCH", 200);
    ++cameras;
    auto t0 = std::chrono::steady_clock::now();
    changes.Fire();
    auto arrived = NextPatchArrival(*s.server, patches);
    if (!arrived) {
      state.SkipWithError("no patch within 20 s");
      break;
    }
    Record(state, ms, t0, *arrived);
  }
  agent.Stop();
  runner.join();
  ReportPercentiles(state, ms);
}
BENCHMARK(BM_EventToPatch)->UseManualTime()->Iterations(200)->Unit(benchmark::kMillisecond);

// A rules file whose one rule matches the fixture's GPU under a name of its version.
std::string RulesVersion(int version) {
  return "rules:\n  - name: gpu-v" + std::to_string(version) +
         "\n    match:\n      - compatible: [\"nvidia,gm20b\"]\n";
}

// BM_RulesChangeToLabels: a new version of the rules ConfigMap, published as the kubelet does
// (a new `..data` swapped in), until the API server has the patch that gives the Node the new
// rule's label: the inotify watcher and its coalescing, discovery with the new rules, the
// patch over TLS. Wired as edgefd-labeller-agent wires it.
void BM_RulesChangeToLabels(benchmark::State& state) {
  Setup& s = Setup::Get();
  s.server->AddNode("rules-node", {{"kubernetes.io/hostname", "rules-node"}});
  auto api = kube::MakeKubeClient(s.Config());
  if (!api) {
    state.SkipWithError(api.error().message.c_str());
    return;
  }
  AgentMetrics metrics;
  NodeLabeller labeller(**api, "rules-node", &metrics);
  ProjectedVolume volume(s.dir / "rules-volume");
  int version = 0;
  volume.Publish({{"rules.yaml", RulesVersion(version)}});
  DiscoveryOptions options;
  options.root = kRoot;
  options.udev = false;
  options.rule_files = {volume.path() / "rules.yaml"};
  Discoverer discoverer(options);
  RulesReload reload(options.rule_files);
  Agent::DiscoverFn discover = [&]() -> Result<Labels> {
    auto report = discoverer.Run();
    if (!report) return report.error();
    reload.Observe(report->rules);
    return RenderLabels(report->inventory);
  };
  Agent::Options agent_options;
  agent_options.resync = std::chrono::hours(1);
  Agent agent(discover, labeller, metrics, agent_options);
  std::unique_ptr<ChangeSource> watcher = MakeRulesWatcher(options);
  std::thread runner([&] { (void)agent.Run(watcher.get()); });
  s.server->WaitFor([&] { return metrics.ready.load(); });

  std::vector<double> ms;
  for (auto _ : state) {
    size_t patches = s.server->Count("PATCH", 200);
    ++version;
    auto t0 = std::chrono::steady_clock::now();
    volume.Publish({{"rules.yaml", RulesVersion(version)}});
    auto arrived = NextPatchArrival(*s.server, patches);
    const std::string label = "edgefd.io/accel.gpu-v" + std::to_string(version);
    if (!arrived || s.server->NodeLabels("rules-node").count(label) == 0) {
      state.SkipWithError(("no patch with " + label + " within 20 s").c_str());
      break;
    }
    Record(state, ms, t0, *arrived);
  }
  agent.Stop();
  runner.join();
  ReportPercentiles(state, ms);
}
BENCHMARK(BM_RulesChangeToLabels)->UseManualTime()->Iterations(200)->Unit(benchmark::kMillisecond);

bool Preloaded() {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "libumockdev-preload") != nullptr;
}

void BM_UdevEventToPatch(benchmark::State& state) {
  if (!Preloaded()) {
    state.SkipWithError("needs umockdev's preload library (main() sets it up)");
    return;
  }
  Setup& s = Setup::Get();
  s.server->AddNode("udev-node", {{"kubernetes.io/hostname", "udev-node"}});
  Testbed tb;
  if (!tb.Plug("host.umockdev")) {
    state.SkipWithError("umockdev rejected host.umockdev");
    return;
  }
  auto api = kube::MakeKubeClient(s.Config());
  if (!api) {
    state.SkipWithError(api.error().message.c_str());
    return;
  }
  AgentMetrics metrics;
  NodeLabeller labeller(**api, "udev-node", &metrics);
  DiscoveryOptions options;
  options.root = tb.Root();
  options.udev = true;
  Agent::DiscoverFn discover = [&]() -> Result<Labels> {
    auto report = Discover(options);
    if (!report) return report.error();
    return RenderLabels(report->inventory);
  };
  auto rules = LoadRules({});
  WatchOptions watch;  // the agent's defaults
  watch.subsystems = UdevSubsystems(rules ? *rules : std::vector<Rule>{});
  HotplugWatcher watcher(watch);
  Agent::Options agent_options;
  agent_options.resync = std::chrono::hours(1);
  // As the daemon: once the node is labelled, what start-up touched goes back (memory.h), so
  // the first events after it fault their code in again and are counted here.
  agent_options.on_settled = [] { ReleaseStartUpMemory(); };
  Agent agent(discover, labeller, metrics, agent_options);
  std::thread runner([&] { (void)agent.Run(&watcher); });
  s.server->WaitFor([&] { return metrics.ready.load(); }, std::chrono::seconds(5));

  const std::string stick = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3";
  std::vector<double> ms;
  bool plugged = false;
  for (auto _ : state) {
    size_t patches = s.server->Count("PATCH", 200);
    std::chrono::steady_clock::time_point t0;
    if (!plugged) {
      t0 = std::chrono::steady_clock::now();  // before umockdev writes the first device
      if (!tb.Plug("coral-usb-runtime.umockdev")) {
        state.SkipWithError("umockdev rejected coral-usb-runtime.umockdev");
        break;
      }
    } else {
      tb.Unplug(stick, [&] { t0 = std::chrono::steady_clock::now(); });
    }
    plugged = !plugged;
    auto arrived = NextPatchArrival(*s.server, patches);
    if (!arrived) {
      state.SkipWithError("no patch within 20 s of the udev event");
      break;
    }
    Record(state, ms, t0, *arrived);
  }
  agent.Stop();
  runner.join();
  ReportPercentiles(state, ms);
}
BENCHMARK(BM_UdevEventToPatch)->UseManualTime()->Iterations(100)->Unit(benchmark::kMillisecond);

// Starts the agent as the DaemonSet would: without this program's umockdev preload.
pid_t Spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "LD_PRELOAD=", 11) != 0 && std::strncmp(*e, "UMOCKDEV_DIR=", 13) != 0) {
      env.push_back(*e);
    }
  }
  env.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), env.data()) != 0) return -1;
  return pid;
}

void BM_IdleRss(benchmark::State& state) {
  Setup& s = Setup::Get();
  s.server->AddNode("rss-node", {});
  const char* other = std::getenv("EDGEFD_BENCH_LABELLER");
  const std::string bin = other != nullptr && *other != '\0' ? other : LabellerBin();
  for (auto _ : state) {
    pid_t pid = Spawn({bin, "--kubeconfig", s.kubeconfig.string(), "--node-name", "rss-node",
                       "--root", kRoot.string(), "--udev", "--metrics-addr", "127.0.0.1:0",
                       "--resync", "1", "--log-level", "warn"});
    if (pid < 0) {
      state.SkipWithError("cannot start edgefd-labeller");
      return;
    }
    bool labelled = s.server->WaitFor(
        [&] { return s.server->NodeLabels("rss-node").count("edgefd.io/board") == 1; });
    // Idle: a few resyncs (1 s) have run and the agent waits for the next one.
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    state.counters["rss_kib"] = static_cast<double>(ProcStatus(pid, "VmRSS"));
    state.counters["hwm_kib"] = static_cast<double>(ProcStatus(pid, "VmHWM"));
    state.counters["threads"] = static_cast<double>(ProcStatus(pid, "Threads"));
    if (const char* dump = std::getenv("EDGEFD_BENCH_SMAPS"); dump != nullptr) {
      // Where the memory is, for whoever wants to make it smaller.
      WriteFile(dump, ReadFile("/proc/" + std::to_string(pid) + "/smaps"));
    }
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!labelled) state.SkipWithError("the daemon did not label the node");
  }
}
BENCHMARK(BM_IdleRss)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace

int main(int argc, char** argv) {
  // umockdev must be preloaded from the process's start: run this program again with it.
  if (!Preloaded() && std::getenv("EDGEFD_BENCH_NO_UMOCKDEV") == nullptr) {
    std::string preload = UmockdevPreload();
    if (const char* old = std::getenv("LD_PRELOAD"); old != nullptr && *old != '\0') {
      preload += std::string(":") + old;
    }
    setenv("LD_PRELOAD", preload.c_str(), 1);
    execv("/proc/self/exe", argv);
    std::perror("reconcile_bench: cannot re-run itself with umockdev");  // then run without
    unsetenv("LD_PRELOAD");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
