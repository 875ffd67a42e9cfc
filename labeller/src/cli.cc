#include "edgefd/labeller/cli.h"

#include <getopt.h>
#include <poll.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/discovery/cpu.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/udev.h"

namespace edgefd {
namespace {

constexpr char kUsage[] = R"(Usage: edgefd-labeller [OPTIONS]

Discovers this node's board, CPU cores, accelerators and cameras and labels the
Kubernetes Node with them. With --dry-run it prints the labels and exits;
without, it keeps the Node's labels equal to what it discovers, touching only
the labels it owns, until stopped.

Options:
  --dry-run            print the labels this node would get, then exit
  --root DIR           read sysfs/procfs below DIR instead of / (default: /;
                       /host in the DaemonSet, with the host's /sys at /host/sys)
  --dtb FILE           read the devicetree from this .dtb instead of the live
                       tree (ROOT/sys/firmware/devicetree/base or ROOT/sys/firmware/fdt)
  --node NAME          also label compatibles of enabled devicetree nodes named
                       NAME (repeatable; cpu, gpu and npu are always included)
  --output FORMAT      text (name=value per line, sorted) or json (default: text);
                       nfd: write an NFD feature file instead of patching the Node
  --nfd-file PATH      the feature file for --output nfd (default:
                       /etc/kubernetes/node-feature-discovery/features.d/edgefd)
  --once               label the Node (or write the NFD file) once, then exit
  --kubeconfig FILE    reach the API server with this kubeconfig's current
                       context (default: the in-cluster service account)
  --node-name NAME     the Node to label (default: $NODE_NAME, else the hostname)
  --resync SECONDS     re-check the Node at least this often (default: 300)
  --insecure-skip-tls-verify
                       do not verify the API server's certificate (unsafe)
  --metrics-addr ADDR  serve /healthz, /readyz and /metrics on HOST:PORT
                       (default: :9402; an empty ADDR disables it)
  --config FILE        accelerator/camera rules (YAML) over the built-in ones
                       (repeatable; later files override earlier rules by name)
  --udev, --no-udev    enumerate accelerators and cameras with libudev (default:
                       on when --root is / and there is no --dtb; libudev reads
                       this process's /sys and /run/udev)
  --watch              with --dry-run: keep running and print label changes
                       (+name=value, -name) as devices come and go
  --rescan SECONDS     with --watch or without --dry-run: rescan period when the
                       udev netlink monitor is unavailable (default: 30)
  --print-rules        print the built-in accelerator/camera rules and exit
  --log-level LEVEL    trace, debug, info, warn, error or off (default: info)
  -h, --help           show this help and exit
  --version            show the version and exit

Exit status: 0 success, 1 runtime failure, 2 bad usage or bad input.
)";

struct Options {
  bool dry_run = false;
  std::string output = "text";
  std::string log_level = "info";
  DiscoveryOptions discovery;
  AgentCliOptions agent;
  bool watch = false;
  std::chrono::milliseconds rescan{std::chrono::seconds(30)};
};

enum OptionId {
  kOptDryRun = 256,
  kOptRoot,
  kOptDtb,
  kOptNode,
  kOptOutput,
  kOptLogLevel,
  kOptVersion,
  kOptNfdFile,
  kOptOnce,
  kOptKubeconfig,
  kOptNodeName,
  kOptResync,
  kOptInsecure,
  kOptMetricsAddr,
  kOptConfig,
  kOptUdev,
  kOptNoUdev,
  kOptWatch,
  kOptRescan,
  kOptPrintRules,
};

void UsageError(const std::string& message) {
  std::fprintf(stderr, "edgefd-labeller: %s\nTry 'edgefd-labeller --help'.\n", message.c_str());
}

// Returns an exit code when the program should stop now (help, version, bad usage).
std::optional<int> ParseArgs(int argc, char** argv, Options& opts) {
  static const option kLongOptions[] = {
      {"dry-run", no_argument, nullptr, kOptDryRun},
      {"root", required_argument, nullptr, kOptRoot},
      {"dtb", required_argument, nullptr, kOptDtb},
      {"node", required_argument, nullptr, kOptNode},
      {"output", required_argument, nullptr, kOptOutput},
      {"log-level", required_argument, nullptr, kOptLogLevel},
      {"help", no_argument, nullptr, 'h'},
      {"version", no_argument, nullptr, kOptVersion},
      {"nfd-file", required_argument, nullptr, kOptNfdFile},
      {"once", no_argument, nullptr, kOptOnce},
      {"kubeconfig", required_argument, nullptr, kOptKubeconfig},
      {"node-name", required_argument, nullptr, kOptNodeName},
      {"resync", required_argument, nullptr, kOptResync},
      {"insecure-skip-tls-verify", no_argument, nullptr, kOptInsecure},
      {"metrics-addr", required_argument, nullptr, kOptMetricsAddr},
      {"config", required_argument, nullptr, kOptConfig},
      {"udev", no_argument, nullptr, kOptUdev},
      {"no-udev", no_argument, nullptr, kOptNoUdev},
      {"watch", no_argument, nullptr, kOptWatch},
      {"rescan", required_argument, nullptr, kOptRescan},
      {"print-rules", no_argument, nullptr, kOptPrintRules},
      {nullptr, 0, nullptr, 0},
  };
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":h", kLongOptions, nullptr)) != -1) {
    switch (c) {
      case kOptDryRun:
        opts.dry_run = true;
        break;
      case kOptRoot:
        opts.discovery.root = optarg;
        break;
      case kOptDtb:
        opts.discovery.dtb = optarg;
        break;
      case kOptNode:
        if (SanitizeLabelName(optarg) != optarg) {
          UsageError(std::string("--node '") + optarg + "': not a devicetree node name");
          return kExitUsage;
        }
        opts.discovery.extra_node_names.emplace_back(optarg);
        break;
      case kOptOutput:
        opts.output = optarg;
        if (opts.output != "text" && opts.output != "json" && opts.output != "nfd") {
          UsageError("--output '" + opts.output + "': expected text, json or nfd");
          return kExitUsage;
        }
        break;
      case kOptLogLevel:
        opts.log_level = optarg;
        if (spdlog::level::from_str(opts.log_level) == spdlog::level::off &&
            opts.log_level != "off") {
          UsageError("--log-level '" + opts.log_level +
                     "': expected trace, debug, info, warn, "
                     "error or off");
          return kExitUsage;
        }
        break;
      case kOptNfdFile:
        opts.agent.nfd_file = optarg;
        break;
      case kOptOnce:
        opts.agent.once = true;
        break;
      case kOptKubeconfig:
        opts.agent.kubeconfig = optarg;
        break;
      case kOptNodeName:
        opts.agent.node_name = optarg;
        break;
      case kOptResync: {
        char* end = nullptr;
        long seconds = std::strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || seconds < 1 || seconds > 86400) {
          UsageError(std::string("--resync '") + optarg + "': expected seconds, 1 to 86400");
          return kExitUsage;
        }
        opts.agent.resync = std::chrono::seconds(seconds);
        break;
      }
      case kOptInsecure:
        opts.agent.insecure_skip_tls_verify = true;
        break;
      case kOptMetricsAddr:
        opts.agent.metrics_addr = optarg;
        break;
      case kOptConfig:
        opts.discovery.rule_files.emplace_back(optarg);
        break;
      case kOptUdev:
        opts.discovery.udev = true;
        break;
      case kOptNoUdev:
        opts.discovery.udev = false;
        break;
      case kOptWatch:
        opts.watch = true;
        break;
      case kOptPrintRules:
        std::fwrite(DefaultRulesYaml().data(), 1, DefaultRulesYaml().size(), stdout);
        return kExitOk;
      case kOptRescan: {
        char* end = nullptr;
        double seconds = std::strtod(optarg, &end);
        if (end == optarg || *end != '\0' || !(seconds > 0 && seconds <= 86400)) {
          UsageError(std::string("--rescan '") + optarg +
                     "': expected seconds between 0 and 86400");
          return kExitUsage;
        }
        opts.rescan =
            std::chrono::milliseconds(std::max<int64_t>(1, static_cast<int64_t>(seconds * 1000)));
        break;
      }
      case 'h':
        std::fputs(kUsage, stdout);
        return kExitOk;
      case kOptVersion:
        std::printf("edgefd-labeller %s\n", EDGEFD_VERSION);
        return kExitOk;
      case ':':
        UsageError(std::string(argv[optind - 1]) + " needs a value");
        return kExitUsage;
      default:
        UsageError(std::string("unknown option '") + argv[optind - 1] + "'");
        return kExitUsage;
    }
  }
  if (optind < argc) {
    UsageError(std::string("unexpected argument '") + argv[optind] + "'");
    return kExitUsage;
  }
  return std::nullopt;
}

void PrintLabels(const Labels& labels, const Inventory& inventory, const std::string& format) {
  std::string out;
  if (format == "json") {
    Json doc = {{"labels", Json::object()}, {"cpus", Json::object()}};
    for (const auto& [name, value] : labels) doc["labels"][name] = value;
    // Per-class CPU lists are data for the device plugin and runtime, not labels.
    for (const auto& [name, cpus] : CpuClassLists(inventory.cpu)) doc["cpus"][name] = cpus;
    out = DumpJson(doc, 2) + "\n";
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
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  // Blocked before the watcher thread starts, so it inherits the mask and signalfd sees them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  UniqueFd signal_fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  UniqueFd change_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!signal_fd.valid() || !change_fd.valid()) {
    spdlog::error("cannot set up the watch loop: {}", std::strerror(errno));
    return kExitFailure;
  }
  auto rules = LoadRules(opts.discovery.rule_files);  // already loaded once: cannot fail here
  WatchOptions watch;
  watch.subsystems = UdevSubsystems(rules ? *rules : std::vector<Rule>{});
  watch.rescan = opts.rescan;
  HotplugWatcher watcher(watch);
  int notify = change_fd.get();
  if (auto status = watcher.Start([notify] {
        uint64_t one = 1;
        ssize_t n = ::write(notify, &one, sizeof one);
        (void)n;  // the counter only saturates after 2^64 - 1 unread changes
      });
      !status) {
    spdlog::error("{}", status.error().message);
    return kExitFailure;
  }
  if (!watcher.warning().empty()) spdlog::warn("{}", watcher.warning());
  spdlog::info("watching for hardware changes ({})", watcher.mode());
  for (;;) {
    pollfd fds[2] = {{signal_fd.get(), POLLIN, 0}, {change_fd.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    uint64_t count = 0;
    if (::read(change_fd.get(), &count, sizeof count) != sizeof count) continue;
    auto report = Discover(opts.discovery);
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

void SetUpLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("edgefd-labeller");
  logger->set_pattern("%n: %^%l%$: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

}  // namespace

int RunLabellerCli(int argc, char** argv) {
  return RunLabellerCli(argc, argv, [](const AgentCliOptions&, char** args) {
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::filesystem::path agent = self.parent_path() / "edgefd-labeller-agent";
    if (ec || access(agent.c_str(), X_OK) != 0) {
      spdlog::error(
          "cannot find {} (installed next to edgefd-labeller), which labels the "
          "Node; only --dry-run works without it",
          agent.string());
      return kExitFailure;
    }
    execv(agent.c_str(), args);
    spdlog::error("cannot run {}: {}", agent.string(), std::strerror(errno));
    return kExitFailure;
  });
}

int RunLabellerCli(int argc, char** argv, const AgentRunner& run_agent) {
  Options opts;
  if (auto exit_code = ParseArgs(argc, argv, opts)) return *exit_code;
  SetUpLogging(opts.log_level);
  if (!opts.dry_run) {
    opts.agent.discovery = opts.discovery;
    opts.agent.nfd = opts.output == "nfd";
    opts.agent.rescan = opts.rescan;
    if (opts.output == "json") {
      UsageError("--output json prints labels and needs --dry-run");
      return kExitUsage;
    }
    return run_agent(opts.agent, argv);
  }

  auto report = Discover(opts.discovery);
  if (!report) {
    spdlog::error("{}", report.error().message);
    return kExitUsage;
  }
  for (const std::string& w : report->warnings) spdlog::warn("{}", w);
  if (report->devicetree_source.empty()) {
    spdlog::info("no devicetree found (looked for {} and {}); devicetree labels skipped",
                 (opts.discovery.root / "sys/firmware/devicetree/base").string(),
                 (opts.discovery.root / "sys/firmware/fdt").string());
  } else {
    spdlog::debug("devicetree read from {}", report->devicetree_source);
  }
  Labels labels = RenderLabels(report->inventory);
  // An NFD feature file is name=value lines, like the text output.
  PrintLabels(labels, report->inventory, opts.output == "nfd" ? "text" : opts.output);
  if (opts.watch) {
    std::fflush(stdout);
    return WatchLoop(opts, std::move(labels));
  }
  return kExitOk;
}

}  // namespace edgefd
