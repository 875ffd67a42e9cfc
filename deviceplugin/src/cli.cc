#include "edgefd/deviceplugin/cli.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/cli.h"
#include "edgefd/common/health.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/mode.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/flags.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/udev.h"

namespace edgefd::deviceplugin {
namespace {

constexpr char kDescription[] =
    R"(Advertises accelerators (rules marked as resources) and, on heterogeneous nodes, big/mid/
little CPU cores to the kubelet as extended resources edgefd.io/<name>, over the kubelet
device-plugin API v1beta1. Runs until SIGTERM or SIGINT, then removes its sockets.)";

constexpr char kFooter[] =
    R"(Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or bad input.)";

struct Flags {
  PluginServerOptions server;
  DiscoveryFlags discovery;
  std::optional<std::string> inventory_file;
  std::string metrics_address = ":9479";
  bool list = false;
  std::string log_level = "info";
  std::string mode = "device-plugin";
  bool cdi = false;
  std::string cdi_dir = std::string(kDefaultCdiDir);
};

void AddFlags(CLI::App& app, Flags& flags) {
  app.add_option("--kubelet-dir", flags.server.kubelet_dir,
                 "kubelet device-plugin directory holding kubelet.sock (default: "
                 "/var/lib/kubelet/device-plugins)")
      ->type_name("DIR");
  app.add_option_function<std::string>(
         "--inventory", [&flags](const std::string& file) { flags.inventory_file = file; },
         "use a static inventory (YAML/JSON) instead of discovery")
      ->type_name("FILE");
  app.add_option("--socket-prefix", flags.server.socket_prefix,
                 "socket file name prefix (default: edgefd-)")
      ->type_name("P");
  app.add_flag("--list", flags.list, "print the resources and devices it would serve, then exit");
  app.add_option("--mode", flags.mode,
                 "device-plugin (default), dra (the DRA kubelet plugin: ResourceSlices, "
                 "NodePrepareResources, CDI) or both; dra and both run edgefd-deviceplugin-dra, "
                 "installed next to this program, with the same arguments (see --mode dra --help)")
      ->type_name("MODE")
      ->check(OneOf({"device-plugin", "dra", "both"}));
  app.add_flag("--cdi", flags.cdi,
               "also name each allocated device's CDI device in Allocate and keep the CDI spec "
               "in --cdi-dir up to date");
  app.add_option("--cdi-dir", flags.cdi_dir, "CDI spec directory (default: /var/run/cdi)")
      ->type_name("DIR");
  AddDiscoveryFlags(app, flags.discovery);
  AddMetricsAddrFlag(app, flags.metrics_address)
      ->description(
          "serve /healthz, /readyz and /metrics on HOST:PORT, [IPV6]:PORT or :PORT "
          "(default: :9479; none or an empty ADDR turns it off)");
  AddLogLevelFlag(app, flags.log_level);
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

// Where devices come from: the static inventory file, or discovery.
InventoryFeed::DiscoverFn MakeDiscover(const Flags& flags) {
  if (flags.inventory_file) {
    return [path = *flags.inventory_file]() { return LoadInventoryFile(path); };
  }
  return [options = flags.discovery.discovery]() -> Result<Inventory> {
    auto report = Discover(options);
    if (!report) return report.error();
    return std::move(report->inventory);
  };
}

// What the hardware watcher watches: the udev subsystems the rules need (nothing for a static
// inventory). A broken rules file is the user's to fix.
Result<WatchOptions> MakeWatchOptions(const Flags& flags) {
  WatchOptions watch;
  watch.rescan = flags.discovery.rescan;
  if (flags.inventory_file) return watch;
  auto rules = LoadRules(flags.discovery.discovery.rule_files);
  if (!rules) return rules.error();
  watch.subsystems = UdevSubsystems(*rules);
  return watch;
}

// --list: one discovery, printed.
int ListResources(const InventoryFeed::DiscoverFn& discover) {
  auto inventory = discover();
  if (!inventory) {
    spdlog::error("{}", inventory.error().message);
    return kExitUsage;
  }
  InventoryRegistry registry;
  registry.Update(*inventory);
  PrintResources(registry);
  return kExitOk;
}

// Serves the resources until SIGTERM/SIGINT: the inventory feed following the hardware, the
// kubelet sockets, and the health endpoint.
int Serve(const Flags& flags, InventoryFeed::DiscoverFn discover, const WatchOptions& watch) {
  // Blocked before any thread starts, so only sigwait below sees them.
  const sigset_t stop_signals = BlockStopSignals();
  // A closed log pipe must not kill the plugin (and with it every resource on the node).
  ::signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  InventoryRegistry registry;
  HotplugWatcher udev_watcher(watch);
  NoChangeSource no_changes;
  ChangeSource& changes = flags.inventory_file ? static_cast<ChangeSource&>(no_changes)
                                               : static_cast<ChangeSource&>(udev_watcher);
  InventoryFeed feed(registry, std::move(discover), changes, &metrics);
  if (Status s = feed.Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitUsage;
  }
  if (!flags.inventory_file) {
    if (!udev_watcher.warning().empty()) spdlog::warn("{}", udev_watcher.warning());
    spdlog::info("watching for hardware changes ({})", udev_watcher.mode());
  }
  feed.Refresh();  // fills the device gauges
  CdiSpecDir cdi_dir(flags.cdi_dir);
  CdiSpecFeed cdi_feed(registry, cdi_dir);
  PluginServerOptions server_options = flags.server;
  if (flags.cdi) {
    if (Status s = cdi_feed.Start(); !s) {
      spdlog::error("--cdi: {}", s.error().message);
      return kExitFailure;
    }
    server_options.cdi = true;
  }
  PluginServer server(registry, server_options, &metrics);
  if (Status s = server.Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  std::unique_ptr<HttpEndpoint> http;
  if (MetricsEnabled(flags.metrics_address)) {
    auto endpoint = StartHealthEndpoint(flags.metrics_address, PluginHealth(metrics, registry),
                                        "--metrics-addr");
    if (!endpoint) {
      spdlog::error("{}", endpoint.error().message);
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

}  // namespace

int RunDevicePluginCli(int argc, char** argv) {
  if (auto code = HandOverMode(argc, argv)) return *code;
  Flags flags;
  CLI::App app(kDescription, "edgefd-deviceplugin");
  ConfigureApp(app, kFooter);
  AddFlags(app, flags);
  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  // Logs go to stderr; stdout carries only what --list prints.
  SetUpLogging("edgefd-deviceplugin", flags.log_level);
  InventoryFeed::DiscoverFn discover = MakeDiscover(flags);
  if (flags.list) return ListResources(discover);
  auto watch = MakeWatchOptions(flags);
  if (!watch) {
    spdlog::error("{}", watch.error().message);
    return kExitUsage;
  }
  return Serve(flags, std::move(discover), *watch);
}

}  // namespace edgefd::deviceplugin
