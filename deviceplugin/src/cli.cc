#include "edgefd/deviceplugin/cli.h"

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/cli.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/mode.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/discovery.h"
#include "edgefd/http_endpoint.h"
#include "edgefd/rules.h"
#include "edgefd/udev.h"

namespace edgefd::deviceplugin {
namespace {

constexpr const char* kUsage = R"(Usage: edgefd-deviceplugin [OPTIONS]

Advertises accelerators (rules marked as resources) and, on heterogeneous nodes, big/mid/
little CPU cores to the kubelet as extended resources edgefd.io/<name>, over the kubelet
device-plugin API v1beta1. Runs until SIGTERM or SIGINT, then removes its sockets.

Options:
  --mode MODE            device-plugin (default), dra (the DRA kubelet plugin:
                         ResourceSlices, NodePrepareResources, CDI) or both; dra and
                         both run edgefd-deviceplugin-dra, installed next to this
                         program, with the same arguments (see its --help)
  --cdi                  also name each allocated device's CDI device in Allocate and
                         keep the CDI spec in --cdi-dir up to date
  --cdi-dir DIR          CDI spec directory (default /var/run/cdi)
  --kubelet-dir DIR      kubelet device-plugin directory holding kubelet.sock
                         (default /var/lib/kubelet/device-plugins)
  --root DIR             discover below DIR, e.g. /host with the host's /sys there (default /)
  --dtb FILE             read this devicetree blob instead of the live tree
  --config FILE          extra accelerator rules (YAML); may be repeated
  --udev, --no-udev      enumerate accelerators with libudev (default: on when --root
                         is / and there is no --dtb; the DaemonSet passes --udev)
  --inventory FILE       use a static inventory (YAML/JSON) instead of discovery
  --socket-prefix P      socket file name prefix (default edgefd-)
  --metrics-addr A       serve /metrics, /healthz and /readyz on HOST:PORT
                         (default :9479; "none" disables; the labeller's flag
                         has the same name; --metrics-address is an alias)
  --rescan SECONDS       when the udev netlink monitor cannot run, rescan every
                         SECONDS instead (default 30; 0: never)
  --list                 print the resources and devices it would serve, then exit
  --log-level LEVEL      trace, debug, info, warn, error (default info)
  --version              print the version and exit
  -h, --help             print this help and exit

Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or input.
)";

struct Flags {
  PluginServerOptions server;
  DiscoveryOptions discovery;
  std::optional<std::string> inventory_file;
  std::string metrics_address = ":9479";
  int rescan_seconds = 30;
  bool list = false;
  std::string log_level = "info";
  bool cdi = false;
  std::string cdi_dir = std::string(kDefaultCdiDir);
};

// Parses argv; returns an exit code when the program should stop right away.
std::optional<int> ParseFlags(int argc, char** argv, Flags& flags) {
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::optional<std::string> inline_value;
    if (arg.starts_with("--") && arg.find('=') != std::string::npos) {
      inline_value = arg.substr(arg.find('=') + 1);
      arg.resize(arg.find('='));
    }
    auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 < args.size()) return args[++i];
      std::cerr << "edgefd-deviceplugin: " << arg << " needs a value (see --help)\n";
      return std::nullopt;
    };
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return kExitOk;
    }
    if (arg == "--version") {
      std::cout << "edgefd-deviceplugin " << EDGEFD_VERSION << "\n";
      return kExitOk;
    }
    if (arg == "--list") {
      flags.list = true;
      continue;
    }
    if (arg == "--udev" || arg == "--no-udev") {
      flags.discovery.udev = arg == "--udev";
      continue;
    }
    if (arg == "--cdi") {
      flags.cdi = true;
      continue;
    }
    auto v = [&]() { return value(); };
    std::optional<std::string> val;
    if (arg == "--kubelet-dir" || arg == "--root" || arg == "--dtb" || arg == "--config" ||
        arg == "--inventory" || arg == "--socket-prefix" || arg == "--metrics-addr" ||
        arg == "--metrics-address" || arg == "--rescan" || arg == "--log-level" ||
        arg == "--mode" || arg == "--cdi-dir") {
      val = v();
      if (!val) return kExitUsage;
    } else {
      std::cerr << "edgefd-deviceplugin: unknown option '" << args[i] << "' (see --help)\n";
      return kExitUsage;
    }
    if (arg == "--kubelet-dir") flags.server.kubelet_dir = *val;
    if (arg == "--root") flags.discovery.root = *val;
    if (arg == "--dtb") flags.discovery.dtb = *val;
    if (arg == "--config") flags.discovery.rule_files.emplace_back(*val);
    if (arg == "--inventory") flags.inventory_file = *val;
    if (arg == "--socket-prefix") flags.server.socket_prefix = *val;
    if (arg == "--metrics-addr" || arg == "--metrics-address") flags.metrics_address = *val;
    if (arg == "--log-level") flags.log_level = *val;
    if (arg == "--cdi-dir") flags.cdi_dir = *val;  // --mode: HandOverMode has checked it
    if (arg == "--rescan") {
      try {
        size_t used = 0;
        flags.rescan_seconds = std::stoi(*val, &used);
        if (used != val->size() || flags.rescan_seconds < 0 || flags.rescan_seconds > 86400) {
          throw std::invalid_argument("");
        }
      } catch (const std::exception&) {
        std::cerr << "edgefd-deviceplugin: --rescan '" << *val
                  << "': expected whole seconds between 0 and 86400\n";
        return kExitUsage;
      }
    }
  }
  auto level = spdlog::level::from_str(flags.log_level);
  if (level == spdlog::level::off && flags.log_level != "off") {
    std::cerr << "edgefd-deviceplugin: --log-level '" << flags.log_level
              << "': expected trace, debug, info, warn, error or off\n";
    return kExitUsage;
  }
  // Logs go to stderr; stdout carries only what --list prints.
  spdlog::set_default_logger(spdlog::stderr_logger_mt("edgefd-deviceplugin"));
  spdlog::set_level(level);
  return std::nullopt;
}

void PrintResources(const DeviceRegistry& registry) {
  for (const std::string& name : registry.ResourceNames()) {
    auto snapshot = registry.Snapshot(name);
    if (!snapshot) continue;
    std::cout << name << " (" << EnvVarName(*snapshot);
    if (snapshot->kind == ResourceKind::kAccelerator) {
      std::cout << ", " << DevnodesEnvVarName(*snapshot);
    }
    std::cout << ")\n";
    for (const PluginDevice& d : snapshot->devices) {
      std::cout << "  " << d.id << (d.healthy && d.present ? " Healthy" : " Unhealthy");
      if (d.numa_node >= 0) std::cout << " numa=" << d.numa_node;
      if (d.group >= 0) std::cout << " group=" << d.group;
      for (const std::string& n : d.devnodes) std::cout << ' ' << n;
      std::cout << '\n';
    }
  }
  if (registry.ResourceNames().empty()) std::cout << "no resources\n";
}

}  // namespace

int RunDevicePluginCli(int argc, char** argv) {
  if (auto code = HandOverMode(argc, argv)) return *code;
  Flags flags;
  if (auto code = ParseFlags(argc, argv, flags)) return *code;

  // Block the stop signals before any thread starts, so only sigwait below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A closed log pipe must not kill the plugin (and with it every resource on the node).
  ::signal(SIGPIPE, SIG_IGN);

  InventoryFeed::DiscoverFn discover;
  if (flags.inventory_file) {
    discover = [path = *flags.inventory_file]() { return LoadInventoryFile(path); };
  } else {
    discover = [options = flags.discovery]() -> Result<Inventory> {
      auto report = Discover(options);
      if (!report) return report.error();
      return std::move(report->inventory);
    };
  }
  Metrics metrics;
  InventoryRegistry registry;
  // Hardware changes: the udev monitor (falling back to rescans without netlink); nothing
  // to watch for a static inventory.
  WatchOptions watch;
  if (!flags.inventory_file) {
    auto rules = LoadRules(flags.discovery.rule_files);
    if (!rules) {
      std::cerr << "edgefd-deviceplugin: " << rules.error().message << "\n";
      return kExitUsage;
    }
    watch.subsystems = UdevSubsystems(*rules);
  }
  watch.rescan = flags.rescan_seconds > 0 ? std::chrono::milliseconds(flags.rescan_seconds * 1000)
                                          : std::chrono::hours(24 * 365);
  HotplugWatcher udev_watcher(watch);
  NoChangeSource no_changes;
  ChangeSource& changes = flags.inventory_file ? static_cast<ChangeSource&>(no_changes)
                                               : static_cast<ChangeSource&>(udev_watcher);
  InventoryFeed feed(registry, discover, changes, &metrics);
  if (flags.list) {
    auto inventory = discover();
    if (!inventory) {
      std::cerr << "edgefd-deviceplugin: " << inventory.error().message << "\n";
      return kExitUsage;
    }
    registry.Update(*inventory);
    PrintResources(registry);
    return kExitOk;
  }
  if (Status s = feed.Start(); !s) {
    std::cerr << "edgefd-deviceplugin: " << s.error().message << "\n";
    return kExitUsage;
  }
  if (!flags.inventory_file) {
    if (!udev_watcher.warning().empty()) spdlog::warn("{}", udev_watcher.warning());
    spdlog::info("watching for hardware changes ({})", udev_watcher.mode());
  }
  feed.Refresh();  // fills the device gauges
  CdiSpecDir cdi_dir(flags.cdi_dir);
  CdiSpecFeed cdi_feed(registry, cdi_dir);
  if (flags.cdi) {
    if (Status s = cdi_feed.Start(); !s) {
      std::cerr << "edgefd-deviceplugin: --cdi: " << s.error().message << "\n";
      return kExitFailure;
    }
    flags.server.cdi = true;
  }
  PluginServer server(registry, flags.server, &metrics);
  if (Status s = server.Start(); !s) {
    std::cerr << "edgefd-deviceplugin: " << s.error().message << "\n";
    return kExitFailure;
  }
  std::unique_ptr<HttpEndpoint> http;
  if (flags.metrics_address != "none" && !flags.metrics_address.empty()) {
    auto endpoint = HttpEndpoint::Start(
        flags.metrics_address,
        [&](std::string_view path) -> HttpReply {
          if (path == "/metrics") {
            return {200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render()};
          }
          if (path == "/healthz") return {200, "text/plain", "ok\n"};
          if (path == "/readyz") {
            // Ready once the kubelet has every resource (a node with none is ready as is).
            if (registry.ResourceNames().empty() || metrics.AllRegistered()) {
              return {200, "text/plain", "ok\n"};
            }
            return {503, "text/plain", "not registered with the kubelet yet\n"};
          }
          return {404, "text/plain", "not found\n"};
        },
        "--metrics-addr");
    if (!endpoint) {
      std::cerr << "edgefd-deviceplugin: " << endpoint.error().message << "\n";
      server.Stop();
      return kExitUsage;
    }
    http = std::move(*endpoint);
    spdlog::info("metrics on {} (port {})", flags.metrics_address, http->port());
  }

  int signal = 0;
  sigwait(&stop_signals, &signal);
  spdlog::info("signal {}: stopping", signal);
  http.reset();
  feed.Stop();
  server.Stop();
  return kExitOk;
}

}  // namespace edgefd::deviceplugin
