#include <getopt.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "edgefd/cli.h"
#include "edgefd/cpu.h"
#include "edgefd/discovery.h"
#include "edgefd/json.h"
#include "edgefd/labels.h"
#include "edgefd/reconcile.h"

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
      {nullptr, 0, nullptr, 0},
  };
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, ":h", kLongOptions, nullptr)) != -1) {
    switch (c) {
      case kOptDryRun: opts.dry_run = true; break;
      case kOptRoot: opts.discovery.root = optarg; break;
      case kOptDtb: opts.discovery.dtb = optarg; break;
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
          UsageError("--log-level '" + opts.log_level + "': expected trace, debug, info, warn, "
                     "error or off");
          return kExitUsage;
        }
        break;
      case kOptNfdFile: opts.agent.nfd_file = optarg; break;
      case kOptOnce: opts.agent.once = true; break;
      case kOptKubeconfig: opts.agent.kubeconfig = optarg; break;
      case kOptNodeName: opts.agent.node_name = optarg; break;
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
      case kOptInsecure: opts.agent.insecure_skip_tls_verify = true; break;
      case kOptMetricsAddr: opts.agent.metrics_addr = optarg; break;
      case 'h': std::fputs(kUsage, stdout); return kExitOk;
      case kOptVersion: std::printf("edgefd-labeller %s\n", EDGEFD_VERSION); return kExitOk;
      case ':': UsageError(std::string(argv[optind - 1]) + " needs a value"); return kExitUsage;
      default: UsageError(std::string("unknown option '") + argv[optind - 1] + "'"); return kExitUsage;
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
    out = "{\"labels\": {";
    bool first = true;
    for (const auto& [name, value] : labels) {
      out += first ? "\n  " : ",\n  ";
      first = false;
      out += JsonQuote(name) + ": " + JsonQuote(value);
    }
    out += labels.empty() ? "}" : "\n}";
    // Per-class CPU lists are data for the device plugin and runtime, not labels.
    out += ",\n\"cpus\": " + CpuClassesJson(inventory.cpu) + "}\n";
  } else {
    for (const auto& [name, value] : labels) out += name + "=" + value + "\n";
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
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
      spdlog::error("cannot find {} (installed next to edgefd-labeller), which labels the "
                    "Node; only --dry-run works without it", agent.string());
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
  // An NFD feature file is name=value lines, like the text output.
  PrintLabels(RenderLabels(report->inventory), report->inventory,
              opts.output == "nfd" ? "text" : opts.output);
  return kExitOk;
}

}  // namespace edgefd
