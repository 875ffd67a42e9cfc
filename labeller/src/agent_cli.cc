// edgefd-labeller without --dry-run: wires discovery, the API client, the reconcile loop and
// the health endpoint together.
#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "edgefd/agent/reconcile.h"
#include "edgefd/common/json.h"
#include "edgefd/common/program.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/rules_reload.h"
#include "edgefd/discovery/udev.h"
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

 private:
  HotplugWatcher watcher_;
};

// Where the labels go: the NFD feature file, or the Node through `api` (which this makes);
// rules reloads are then told in Events on the Node.
Result<std::unique_ptr<LabelSink>> MakeSink(const AgentCliOptions& opts, AgentMetrics& metrics,
                                            std::unique_ptr<kube::ApiTransport>& api,
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
  spdlog::info("labelling node {} through {}", node, server);
  reload.SetEventPoster(
      [&api = *api, node](std::string_view reason, const std::string& message, bool warning) {
        kube::NodeEvent event{node, "", std::string(reason), message, warning, "edgefd-labeller"};
        if (Status posted = kube::PostNodeEvent(api, event); !posted) {
          spdlog::warn("no Event on Node {}: {}", node, posted.error().message);
        }
      });
  return std::unique_ptr<LabelSink>(std::make_unique<NodeLabeller>(*api, node, &metrics));
}

// Discovery as the agent needs it: the labels, warnings at debug level (they repeat), the rules'
// status to `reload`. The Discoverer keeps the devicetree between hardware events
// (Agent::Options::on_resync makes it read it again) and the last rules that loaded.
Agent::DiscoverFn DiscoverLabels(std::shared_ptr<Discoverer> discoverer, RulesReload& reload) {
  return [discoverer = std::move(discoverer), &reload]() -> Result<Labels> {
    auto report = discoverer->Run();
    if (!report) return report.error();
    reload.Observe(report->rules);
    for (const std::string& w : report->warnings) spdlog::debug("{}", w);
    return RenderLabels(report->inventory);
  };
}

// Hardware changes: udev's netlink monitor, or a rescan when it cannot be opened. Only where
// discovery uses udev at all (--udev, or --root / without --dtb): otherwise nothing it
// reports could change the labels, and the --resync suffices.
std::unique_ptr<ChangeSource> MakeWatcher(const AgentCliOptions& opts) {
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
              const RulesReload& reload) {
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
  std::unique_ptr<ChangeSource> udev = MakeWatcher(opts);
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
  kube::Api api(transport);
  std::vector<std::string> names;
  std::string token;
  for (int page = 0; page < kMaxPages; ++page) {
    auto response = api.ListNodes(kPage, token);
    if (!response) return Error{"GET /api/v1/nodes: " + response.error().message};
    if (response->status != 200)
      return Error{kube::DescribeFailure("GET /api/v1/nodes", *response)};
    auto list = ParseJson(response->body, "GET /api/v1/nodes");
    if (!list) return list.error();
    const Json* items = ValueAt(*list, "/items");
    if (items == nullptr || !items->is_array()) return Error{"GET /api/v1/nodes: not a list"};
    for (const Json& item : *items) names.push_back(StringAt(item, "/metadata/name"));
    token = StringAt(*list, "/metadata/continue");
    if (token.empty()) return names;
  }
  return Error{"GET /api/v1/nodes: more than " + std::to_string(kPage * kMaxPages) + " Nodes"};
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
  auto sink = MakeSink(opts, metrics, api, reload);
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
  Agent agent(DiscoverLabels(discoverer, reload), **sink, metrics, agent_options);
  // A stop ends the loop's wait and the request in flight, whatever the mode.
  OnStop on_stop([&agent, &api](int signal) {
    spdlog::info("signal {} received, stopping", signal);
    agent.Stop();
    if (api) api->Cancel();
  });
  if (!opts.once) return RunDaemon(opts, agent, metrics, reload);
  if (Status done = agent.RunOnce(); !done) {
    spdlog::error("{}", done.error().message);
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace edgefd
