#include <getopt.h>

#include <cstdio>
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

namespace edgefd {
namespace {

constexpr char kUsage[] = R"(Usage: edgefd-labeller [OPTIONS]

Discovers this node's board, CPU cores, accelerators and cameras and labels the
Kubernetes Node with them. With --dry-run it prints the labels and exits.

Options:
  --dry-run            print the labels this node would get, then exit
  --root DIR           read sysfs/procfs below DIR instead of / (default: /;
                       /host in the DaemonSet, with the host's /sys at /host/sys)
  --dtb FILE           read the devicetree from this .dtb instead of the live
                       tree (ROOT/sys/firmware/devicetree/base or ROOT/sys/firmware/fdt)
  --node NAME          also label compatibles of enabled devicetree nodes named
                       NAME (repeatable; cpu, gpu and npu are always included)
  --output FORMAT      text (name=value per line, sorted) or json (default: text)
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
};

enum OptionId {
  kOptDryRun = 256,
  kOptRoot,
  kOptDtb,
  kOptNode,
  kOptOutput,
  kOptLogLevel,
  kOptVersion,
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
        if (opts.output != "text" && opts.output != "json") {
          UsageError("--output '" + opts.output + "': expected text or json");
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
  Options opts;
  if (auto exit_code = ParseArgs(argc, argv, opts)) return *exit_code;
  SetUpLogging(opts.log_level);
  if (!opts.dry_run) {
    UsageError("labelling the Node through the API server is not available in this build; "
               "use --dry-run");
    return kExitUsage;
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
  PrintLabels(RenderLabels(report->inventory), report->inventory, opts.output);
  return kExitOk;
}

}  // namespace edgefd
