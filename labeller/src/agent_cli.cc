// edgefd-labeller without --dry-run: wires discovery, the API client, the reconcile loop and
// the health endpoint together.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "edgefd/agent/nodefeature.h"
#include "edgefd/agent/reconcile.h"
#include "edgefd/common/json.h"
#include "edgefd/common/memory.h"
#include "edgefd/common/program.h"
#include "edgefd/discovery/calibration.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/rules_reload.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/discovery/warning_log.h"
#include "edgefd/kube/events.h"
#include "edgefd/labeller/cli.h"

namespace edgefd {
namespace {

// The udev watcher, saying once started how it watches (monitor or rescan) and why.
class LoggedWatcher final : public ChangeSource {
 public:
  explicit LoggedWatcher(WatchOptions options) : watcher_(std::move(options)) {}
  Status Start(std::function<void()> on_change) override {
    Status started = watcher_.Start(std::move(on_change));
    if (started) {
      if (!watcher_.warning().empty()) spdlog::warn("{}", watcher_.warning());
      spdlog::info("watching for hardware changes ({})", watcher_.mode());
    }
    return started;
  }
  void Stop() override { watcher_.Stop(); }
  HotplugWatcher& watcher() { return watcher_; }

 private:
  HotplugWatcher watcher_;
};

// The namespace of --output nodefeature: $POD_NAMESPACE (the DaemonSet sets it from
// metadata.namespace), else the service account's namespace file.
Result<std::string> NodeFeatureNamespace() {
  if (std::string ns = kube::PodNamespace(); !ns.empty()) return ns;
  return Error{
      "--output nodefeature: no namespace for the NodeFeature object: set POD_NAMESPACE (the "
      "DaemonSet sets it from metadata.namespace)"};
}

// Where the labels go: the NFD feature file, a NodeFeature object, or the Node through `api`
// (which this makes); rules reloads are then told in Events on the Node. `inventory` is what
// the discover function last found.
Result<std::unique_ptr<LabelSink>> MakeSink(const AgentCliOptions& opts, AgentMetrics& metrics,
                                            std::unique_ptr<kube::ApiTransport>& api,
                                            const std::shared_ptr<Inventory>& inventory,
                                            RulesReload& reload) {
  if (opts.nfd) {
    spdlog::info("writing labels to the NFD feature file {}", opts.nfd_file.string());
    return std::unique_ptr<LabelSink>(std::make_unique<NfdFileSink>(opts.nfd_file));
  }
  std::string server;
  auto client = kube::ConnectToApiServer(
      {opts.kubeconfig, opts.insecure_skip_tls_verify, opts.allow_insecure_http}, &server);
  if (!client) return client.error();
  api = std::move(*client);
  std::string node = opts.node_name.empty() ? kube::DefaultNodeName() : opts.node_name;
  if (node.empty()) return Error{"no node name: give --node-name or set NODE_NAME"};
  reload.SetEventPoster(
      [&api = *api, node](std::string_view reason, const std::string& message, bool warning) {
        kube::NodeEvent event{node, "", std::string(reason), message, warning, "edgefd-labeller"};
        if (Status posted = kube::PostNodeEvent(api, event); !posted) {
          spdlog::warn("no Event on Node {}: {}", node, posted.error().message);
        }
      });
  if (opts.nodefeature) {
    auto ns = NodeFeatureNamespace();
    if (!ns) return ns.error();
    spdlog::info("publishing NodeFeature {}/{} for node {} through {} (nfd-master labels the Node)",
                 *ns, NodeFeatureName(node), node, server);
    return std::unique_ptr<LabelSink>(std::make_unique<NodeFeatureSink>(
        *api, *ns, node, [inventory]() -> const Inventory& { return *inventory; }, &metrics,
        opts.resync));
  }
  spdlog::info("labelling node {} through {}", node, server);
  return std::unique_ptr<LabelSink>(std::make_unique<NodeLabeller>(*api, node, &metrics));
}

// Discovery as the agent needs it: the labels, each warning once (repeats at debug), the
// rules' status to `reload`; the inventory they came from is kept in `inventory` (the
// NodeFeature's raw features). The Discoverer keeps the devicetree between hardware events
// (Agent::Options::on_resync makes it read it again) and the last rules that loaded. With
// --calibration, the measured GFLOP/s join them; a broken file fails the reconcile (the Node
// keeps the labels it has) and names itself.
Agent::DiscoverFn DiscoverLabels(std::shared_ptr<Discoverer> discoverer,
                                 std::shared_ptr<Inventory> inventory,
                                 std::filesystem::path calibration, RulesReload& reload) {
  auto log = std::make_shared<WarningLog>();
  return [discoverer = std::move(discoverer), inventory = std::move(inventory), calibration, log,
          &reload]() -> Result<Labels> {
    auto report = discoverer->Run();
    if (!report) return report.error();
    reload.Observe(*report);
    log->Log(report->warnings);
    *inventory = std::move(report->inventory);
    Labels labels = RenderLabels(*inventory);
    if (!calibration.empty()) {
      auto published = CalibrationLabels(calibration);
      if (!published) return published.error();
      labels.merge(*published);
    }
    return labels;
  };
}

// Hardware changes: udev's netlink monitor, or a rescan when it cannot be opened. Only where
// discovery uses udev at all (--udev, or --root / without --dtb): otherwise nothing it
// reports could change the labels, and the --resync suffices.
std::unique_ptr<LoggedWatcher> MakeWatcher(const AgentCliOptions& opts) {
  if (!UsesUdev(opts.discovery)) return nullptr;
  auto rules = LoadRules(opts.discovery.rule_files);  // Discover accepted them before
  WatchOptions watch;
  watch.subsystems = UdevSubsystems(rules ? *rules : std::vector<Rule>{});
  watch.rescan = opts.rescan;
  return std::make_unique<LoggedWatcher>(watch);
}

// The DaemonSet's mode: the health endpoint, then reconciles until a stop (SIGTERM/SIGINT), on
// hardware events and on changes of the rules files.
int RunDaemon(const AgentCliOptions& opts, Agent& agent, const AgentMetrics& metrics,
              RulesReload& reload) {
  std::unique_ptr<HttpEndpoint> health;
  if (MetricsEnabled(opts.metrics_addr)) {
    auto started = StartHealthEndpoint(
        opts.metrics_addr, WithRulesMetrics(AgentHealth(metrics), reload), "--metrics-addr");
    if (!started) {
      spdlog::error("{}", started.error().message);
      return kExitUsage;
    }
    health = std::move(*started);
    spdlog::info("serving /healthz, /readyz and /metrics on port {}", health->port());
  }
  std::unique_ptr<LoggedWatcher> udev = MakeWatcher(opts);
  // A reload that names a new subsystem widens the watcher's filter.
  FollowRules follow_rules(reload, udev ? &udev->watcher() : nullptr);
  std::unique_ptr<ChangeSource> rules = MakeRulesWatcher(opts.discovery);
  ChangeSources changes({udev.get(), rules.get()});
  Status ran = agent.Run(udev || rules ? &changes : nullptr);
  if (!ran) {
    spdlog::error("{}", ran.error().message);
    return kExitFailure;
  }
  spdlog::info("stopped");
  return kExitOk;
}

// The names of every Node, page by page.
Result<std::vector<std::string>> ListNodeNames(kube::ApiTransport& transport) {
  constexpr int kPage = 500;
  constexpr int kMaxPages = 200;  // 100,000 Nodes: far past any cluster's size
  std::vector<std::string> names;
  Status listed = kube::Api(transport).ListEach("/api/v1/nodes", kPage, kMaxPages, "Nodes",
                                                [&names](const Json& item) -> Status {
                                                  names.push_back(StringAt(item, "/metadata/name"));
                                                  return Ok{};
                                                });
  if (!listed) return listed.error();
  return names;
}

// --prune: the Node (or every Node) without what edgefd set: a reconcile towards no labels
// removes exactly the owned ones and the annotation (MergePatchFor), retried like --once.
int RunPrune(const AgentCliOptions& opts) {
  std::string server;
  auto client = kube::ConnectToApiServer(
      {opts.kubeconfig, opts.insecure_skip_tls_verify, opts.allow_insecure_http}, &server);
  if (!client) {
    spdlog::error("{}", client.error().message);
    return kExitUsage;
  }
  kube::ApiTransport& api = **client;
  // --stop-daemonset: the DaemonSets go first, in the foreground, so their pods stop while
  // the accounts they use still exist (the DRA driver then removes its CDI specs).
  if (!opts.stop_daemonsets.empty()) {
    const std::string ns = kube::PodNamespace();
    Status stopped = ns.empty() ? Status(Error{"--stop-daemonset: no namespace: set POD_NAMESPACE"})
                                : kube::DeleteDaemonSetsAndWait(
                                      kube::Api(api), ns, opts.stop_daemonsets, opts.once_timeout,
                                      [](std::chrono::milliseconds t) { return WaitForStop(t); });
    if (!stopped) {
      spdlog::error("{}", stopped.error().message);
      return kExitFailure;
    }
  }
  std::vector<std::string> nodes;
  if (opts.all_nodes) {
    auto names = ListNodeNames(api);
    if (!names) {
      spdlog::error("{}", names.error().message);
      return kExitFailure;
    }
    nodes = std::move(*names);
  } else {
    nodes.push_back(opts.node_name.empty() ? kube::DefaultNodeName() : opts.node_name);
    if (nodes[0].empty()) {
      spdlog::error("no node name: give --node-name or set NODE_NAME (or --all-nodes)");
      return kExitUsage;
    }
  }
  Agent::Options options;
  options.once_timeout = opts.once_timeout;
  options.on_once_timeout = [&api] { api.Cancel(); };
  int failed = 0;
  for (const std::string& node : nodes) {
    if (StopRequested()) break;
    AgentMetrics metrics;
    NodeLabeller labeller(api, node, &metrics);
    Agent agent([]() -> Result<Labels> { return Labels{}; }, labeller, metrics, options);
    OnStop on_stop([&agent, &api](int) {
      agent.Stop();
      api.Cancel();
    });
    if (Status done = agent.RunOnce(); !done) {
      spdlog::error("node {}: {}", node, done.error().message);
      ++failed;
      continue;
    }
    spdlog::info("node {}: edgefd's labels and annotation removed", node);
  }
  return failed == 0 && !StopRequested() ? kExitOk : kExitFailure;
}

}  // namespace

int RunAgentMain(int argc, char** argv) {
  InstallStopHandlers();
  const std::string_view first = argc == 2 ? argv[1] : "";
  if (first == "--version") {
    std::printf("edgefd-labeller-agent %s\n", std::string(Version()).c_str());
    return kExitOk;
  }
  if (first == "--help" || first == "-h") {
    std::printf(
        "Usage: edgefd-labeller-agent OPTIONS-AS-JSON\n\nThe labelling agent. It is started by "
        "edgefd-labeller, which parses the command line and passes the options on as one JSON "
        "argument: run `edgefd-labeller --help` for them.\n");
    return kExitOk;
  }
  auto options = argc == 2 ? AgentOptionsFromJson(argv[1])
                           : Result<AgentCliOptions>(Error{"expected one argument"});
  if (!options) {
    std::fprintf(stderr,
                 "edgefd-labeller-agent: %s\nIt is started by edgefd-labeller, with the options "
                 "that program parsed: run edgefd-labeller instead.\n",
                 options.error().message.c_str());
    return kExitUsage;
  }
  SetUpLogging("edgefd-labeller", options->log_level);
  return RunAgentCli(*options);
}

int RunAgentCli(const AgentCliOptions& opts) {
  // edgefd-labeller kept SIGTERM/SIGINT blocked across the exec: one that came meanwhile is
  // delivered now, to the handler.
  InstallStopHandlers();
  // A peer that hangs up is an error to report, not a reason to die.
  signal(SIGPIPE, SIG_IGN);
  if (opts.prune) return RunPrune(opts);
  // One malloc arena for all threads: the agent allocates little and rarely, and each extra
  // arena keeps its own partly used pages (measured: BM_IdleRss).
  mallopt(M_ARENA_MAX, 1);
  // The pages the loader touched in libraries libcurl drags in but nothing calls (memory.h).
  ReleaseUnusedLibraryPages();

  // Bad discovery input (a missing --dtb, a malformed blob) is the user's to fix: say so and
  // stop now instead of retrying it forever.
  auto discoverer = std::make_shared<Discoverer>(opts.discovery);
  if (auto first = discoverer->Run(); !first) {
    spdlog::error("{}", first.error().message);
    return kExitUsage;
  }
  AgentMetrics metrics;
  RulesReload reload(opts.discovery.rule_files);
  std::unique_ptr<kube::ApiTransport> api;
  // Written by the discover function, read by the sink, both on the agent's thread.
  auto inventory = std::make_shared<Inventory>();
  auto sink = MakeSink(opts, metrics, api, inventory, reload);
  if (!sink) {
    spdlog::error("{}", sink.error().message);
    return kExitUsage;
  }
  Agent::Options agent_options;
  agent_options.resync = opts.resync;
  agent_options.once_timeout = opts.once_timeout;
  // --once past its deadline: the request in flight ends too.
  agent_options.on_once_timeout = [&api] {
    if (api) api->Cancel();
  };
  // Every resync reads the devicetree afresh: an overlay applied without configfs shows then.
  agent_options.on_resync = [discoverer] { discoverer->Invalidate(); };
  // The node is labelled: what start-up touched goes back (memory.h; BM_IdleRss).
  agent_options.on_settled = [] { ReleaseStartUpMemory(); };
  Agent agent(DiscoverLabels(discoverer, inventory, opts.calibration, reload), **sink, metrics,
              agent_options);
  // A stop ends the loop's wait and the request in flight, whatever the mode.
  OnStop on_stop([&agent, &api](int signal) {
    spdlog::info("signal {} received, stopping", signal);
    agent.Stop();
    if (api) api->Cancel();
  });
  if (!opts.once) return RunDaemon(opts, agent, metrics, reload);
  if (Status done = agent.RunOnce(); !done) {
    spdlog::error("{}", done.error().message);
    return ExitStatus(done.error());
  }
  return kExitOk;
}

}  // namespace edgefd
