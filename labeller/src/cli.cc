#include "edgefd/labeller/cli.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "edgefd/common/cli.h"
#include "edgefd/common/json.h"
#include "edgefd/common/memory.h"
#include "edgefd/common/output.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/common/waker.h"
#include "edgefd/discovery/calibration.h"
#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/flags.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/udev.h"

namespace edgefd {
namespace {

constexpr char kDescription[] =
    R"(Discovers this node's board, CPU cores, accelerators and cameras and labels the
Kubernetes Node with them. With --dry-run it prints the labels and exits; without, it keeps
the Node's labels equal to what it discovers, touching only the labels it owns, until
stopped.)";

constexpr char kFooter[] =
    R"(Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.)";

struct Options {
  bool dry_run = false;
  std::string output = "text";
  std::string log_level = "info";
  DiscoveryFlags discovery;
  KubeFlags kube;
  AgentCliOptions agent;
  bool watch = false;
  bool print_rules = false;
  bool explain = false;
};

void AddFlags(CLI::App& app, Options& opts) {
  app.add_flag("--dry-run", opts.dry_run, "print the labels this node would get, then exit");
  app.add_option("--output", opts.output,
                 "with --dry-run: text (name=value per line, sorted), json or yaml (default: "
                 "text); nfd: write an NFD feature file instead of patching the Node; "
                 "nodefeature: publish an NFD NodeFeature object in $POD_NAMESPACE for "
                 "nfd-master to label the Node")
      ->type_name("FORMAT")
      ->check(OneOf({"text", "json", "yaml", "nfd", "nodefeature"}));
  app.add_flag("--explain", opts.explain,
               "with --dry-run: print, rule by rule, which device each match alternative "
               "found, or the nearest device and the key it failed, then exit");
  app.add_option(
         "--nfd-file", opts.agent.nfd_file,
         std::string("the feature file for --output nfd (default: ") + kDefaultNfdFile + ")")
      ->type_name("PATH");
  app.add_flag("--once", opts.agent.once, "label the Node (or write the NFD file) once, then exit");
  app.add_option_function<long long>(
         "--once-timeout",
         [&opts](long long seconds) { opts.agent.once_timeout = std::chrono::seconds(seconds); },
         "with --once: give up after this many seconds in all, retries included (default: 60)")
      ->type_name("SECONDS")
      ->check(IntegerIn(1, 86400));
  app.add_flag("--watch", opts.watch,
               "with --dry-run: keep running and print label changes (+name=value, -name) as "
               "devices come and go");
  app.add_option("--calibration", opts.agent.calibration,
                 "publish edgefd.io/cpu.<class>.gflops from this 'edgefd-pipeline calibrate' "
                 "output (re-read on every reconcile)")
      ->type_name("FILE");
  app.add_flag("--prune", opts.agent.prune,
               "remove the labels edgefd set on the Node (those its edgefd.io/owned-labels "
               "annotation lists, under edgefd.io/ and beta.devicetree.org/ only) and the "
               "annotation, then exit: what uninstalling leaves behind");
  app.add_flag("--all-nodes", opts.agent.all_nodes,
               "with --prune: every Node of the cluster (needs list on nodes), not only this one");
  app.add_option("--stop-daemonset", opts.agent.stop_daemonsets,
                 "with --prune: first delete this DaemonSet of the pod's namespace "
                 "($POD_NAMESPACE) in the foreground and wait until its pods are gone (the "
                 "chart's uninstall hook: the DRA driver then removes its CDI specs); repeatable")
      ->type_name("NAME");
  app.add_flag("--print-rules", opts.print_rules,
               "print the built-in accelerator/camera rules and exit");
  AddDiscoveryFlags(app, opts.discovery);
  opts.kube.resync = opts.agent.resync;  // the agent's default
  AddKubeFlags(app, opts.kube, "the Node's labels");
  AddMetricsAddrFlag(app, opts.agent.metrics_addr)
      ->description(
          "serve /healthz, /readyz and /metrics on HOST:PORT, [IPV6]:PORT or :PORT "
          "(default: :9402; none or an empty ADDR turns it off)");
  AddLogLevelFlag(app, opts.log_level);
}

void PrintLabels(const Labels& labels, const Inventory& inventory, const std::string& format) {
  std::string out;
  if (format == "json" || format == "yaml") {
    Json doc = {{"labels", Json::object()}, {"cpus", Json::object()}};
    for (const auto& [name, value] : labels) doc["labels"][name] = value;
    // Per-class CPU lists are data for the device plugin and runtime, not labels.
    for (const auto& [name, cpus] : CpuClassLists(inventory.cpu)) doc["cpus"][name] = cpus;
    out = DumpDocument(doc, format);
  } else {
    for (const auto& [name, value] : labels) out += name + "=" + value + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

// Prints what changed: removed labels as "-name", new or changed ones as "+name=value".
void PrintDiff(const Labels& before, const Labels& after) {
  std::string out;
  for (const auto& [name, value] : before) {
    if (after.find(name) == after.end()) out += "-" + name + "\n";
  }
  for (const auto& [name, value] : after) {
    auto it = before.find(name);
    if (it == before.end() || it->second != value) out += "+" + name + "=" + value + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

// --dry-run --watch: re-discovers after every coalesced hardware change and prints the label
// diff, until SIGINT or SIGTERM.
int WatchLoop(const Options& opts, Labels labels) {
  Waker change;
  if (Status s = change.Open(); !s) {
    spdlog::error("cannot set up the watch loop: {}", s.error().message);
    return kExitFailure;
  }
  auto rules = LoadRules(opts.discovery.discovery.rule_files);  // loaded once: cannot fail here
  WatchOptions watch;
  watch.subsystems = UdevSubsystems(rules ? *rules : std::vector<Rule>{});
  watch.rescan = opts.discovery.rescan;
  HotplugWatcher watcher(watch);
  if (auto status = watcher.Start([&change] { change.Wake(); }); !status) {
    spdlog::error("{}", status.error().message);
    return kExitFailure;
  }
  if (!watcher.warning().empty()) spdlog::warn("{}", watcher.warning());
  spdlog::info("watching for hardware changes ({})", watcher.mode());
  // Kept across events: the devicetree is read again only when it can have changed.
  Discoverer discoverer(opts.discovery.discovery);
  for (;;) {
    pollfd fds[2] = {{StopFd(), POLLIN, 0}, {change.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    change.Drain();
    auto report = discoverer.Run();
    if (!report) {
      // A rules file broken while running: keep the last good labels.
      spdlog::error("{}; labels unchanged", report.error().message);
      continue;
    }
    Labels now = RenderLabels(report->inventory);
    PrintDiff(labels, now);
    labels = std::move(now);
  }
  watcher.Stop();
  return kExitOk;
}

// Parses the command line into `opts`; an exit code when the program should stop now. The
// parser's own objects are gone when it returns, before discovery needs the memory.
std::optional<int> ParseOptions(int argc, char** argv, Options& opts) {
  CLI::App app(kDescription, "edgefd-labeller");
  ConfigureApp(app, kFooter);
  AddFlags(app, opts);
  return ParseCommandLine(app, argc, argv);
}

// Replaces this process with edgefd-labeller-agent, from this executable's directory, handing
// it the parsed options; returns only on failure.
int ExecAgent(const AgentCliOptions& options) {
  auto json = AgentOptionsToJson(options);
  if (!json) {
    spdlog::error("{}", json.error().message);
    return kExitUsage;
  }
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  std::filesystem::path agent = self.parent_path() / "edgefd-labeller-agent";
  if (ec || access(agent.c_str(), X_OK) != 0) {
    spdlog::error(
        "cannot find {} (installed next to edgefd-labeller), which labels the Node; only "
        "--dry-run works without it",
        agent.string());
    return kExitFailure;
  }
  std::string agent_path = agent.string();
  char* args[] = {agent_path.data(), json->data(), nullptr};
  // Kept blocked across the exec, so a SIGTERM now waits for the agent's handler instead of
  // being lost (the agent may be PID 1, which has no default action for it).
  BlockStopSignals();
  if (StopRequested()) {
    spdlog::info("signal {} received before the agent started; stopping", StopSignal());
    return options.once ? kExitFailure : kExitOk;
  }
  SkipUnusedLibraryInitAcrossExec();  // the agent links libcurl (memory.h)
  execv(agent.c_str(), args);
  spdlog::error("cannot run {}: {}", agent.string(), std::strerror(errno));
  return kExitFailure;
}

}  // namespace

int RunLabellerCli(int argc, char** argv) {
  InstallStopHandlers();
  Options opts;
  if (auto exit_code = ParseOptions(argc, argv, opts)) return *exit_code;
  if (opts.print_rules) {
    std::fwrite(DefaultRulesYaml().data(), 1, DefaultRulesYaml().size(), stdout);
    return kExitOk;
  }
  SetUpLogging("edgefd-labeller", opts.log_level);
  const DiscoveryOptions& discovery = opts.discovery.discovery;
  if ((opts.agent.all_nodes || !opts.agent.stop_daemonsets.empty()) && !opts.agent.prune) {
    std::fprintf(stderr, "edgefd-labeller: %s needs --prune\nTry 'edgefd-labeller --help'.\n",
                 opts.agent.all_nodes ? "--all-nodes" : "--stop-daemonset");
    return kExitUsage;
  }
  if (opts.agent.prune && (opts.dry_run || opts.output != "text" || opts.watch)) {
    std::fprintf(stderr,
                 "edgefd-labeller: --prune changes the Node; it goes with neither --dry-run, "
                 "--output nor --watch\nTry 'edgefd-labeller --help'.\n");
    return kExitUsage;
  }
  if (!opts.dry_run) {
    if (opts.output == "json" || opts.output == "yaml" || opts.explain) {
      std::fprintf(stderr,
                   "edgefd-labeller: %s prints and needs --dry-run\n"
                   "Try 'edgefd-labeller --help'.\n",
                   opts.explain ? "--explain" : ("--output " + opts.output).c_str());
      return kExitUsage;
    }
    opts.agent.discovery = discovery;
    opts.agent.kubeconfig = opts.kube.kubeconfig;
    opts.agent.node_name = opts.kube.node_name;
    opts.agent.insecure_skip_tls_verify = opts.kube.insecure_skip_tls_verify;
    opts.agent.allow_insecure_http = opts.kube.allow_insecure_http;
    opts.agent.resync = opts.kube.resync;
    opts.agent.nfd = opts.output == "nfd";
    opts.agent.nodefeature = opts.output == "nodefeature";
    opts.agent.rescan = opts.discovery.rescan;
    opts.agent.log_level = opts.log_level;
    return ExecAgent(opts.agent);
  }

  auto report = Discover(discovery);
  if (!report) {
    spdlog::error("{}", report.error().message);
    return kExitUsage;
  }
  for (const std::string& w : report->warnings) spdlog::warn("{}", w);
  if (report->devicetree_source.empty()) {
    spdlog::info("no devicetree found (looked for {} and {}); devicetree labels skipped",
                 (discovery.root / "sys/firmware/devicetree/base").string(),
                 (discovery.root / "sys/firmware/fdt").string());
  } else {
    spdlog::debug("devicetree read from {}", report->devicetree_source);
  }
  if (opts.explain) {
    auto explained = ExplainDiscovery(discovery, report->inventory);
    if (!explained) {
      spdlog::error("{}", explained.error().message);
      return kExitFailure;
    }
    std::fwrite(explained->data(), 1, explained->size(), stdout);
    return kExitOk;
  }
  Labels labels = RenderLabels(report->inventory);
  if (!opts.agent.calibration.empty()) {
    auto published = CalibrationLabels(opts.agent.calibration);
    if (!published) {
      spdlog::error("--calibration {}", published.error().message);
      return kExitUsage;
    }
    labels.merge(*published);
  }
  // An NFD feature file is name=value lines, like the text output; so are a NodeFeature's.
  const bool nfd = opts.output == "nfd" || opts.output == "nodefeature";
  PrintLabels(labels, report->inventory, nfd ? "text" : opts.output);
  if (opts.watch) {
    std::fflush(stdout);
    return WatchLoop(opts, std::move(labels));
  }
  return kExitOk;
}

}  // namespace edgefd
