#include "edgefd/deviceplugin/cli.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "edgefd/common/cli.h"
#include "edgefd/common/health.h"
#include "edgefd/common/memory.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/claim_watch.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/flags.h"
#include "edgefd/deviceplugin/mode.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {
namespace {

constexpr char kDescription[] =
    R"(Advertises accelerators (rules marked as resources) and big/mid/little CPU cores (every core
of a homogeneous node is big) to the kubelet as extended resources edgefd.io/<name>, over the
kubelet device-plugin API v1beta1. Runs until SIGTERM or SIGINT, then removes its sockets.)";

constexpr char kFooter[] =
    R"(--mode dra and --mode both run edgefd-deviceplugin-dra, installed next to this program,
with the same arguments: `edgefd-deviceplugin --mode dra --help` lists its flags.

Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or bad input.)";

// Serves the resources until SIGTERM/SIGINT: the inventory feed following the hardware, the
// kubelet sockets, and the health endpoint.
int Serve(const DevicePluginFlags& flags, InventoryFeed::DiscoverFn discover,
          const WatchOptions& watch, RulesReload& reload) {
  // A closed log pipe must not kill the plugin (and with it every resource on the node).
  ::signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  InventoryRegistry registry;
  // Hardware events and changes of the rules files (a ConfigMap update) both rediscover.
  HotplugWatcher udev_watcher(watch);
  // A reload that names a new subsystem widens the watcher's filter.
  FollowRules follow_rules(reload, flags.inventory_file ? nullptr : &udev_watcher);
  std::unique_ptr<ChangeSource> rules_watcher = MakeRulesWatcher(flags.discovery.discovery);
  ChangeSources hardware({&udev_watcher, rules_watcher.get()});
  NoChangeSource no_changes;
  ChangeSource& changes = flags.inventory_file ? static_cast<ChangeSource&>(no_changes)
                                               : static_cast<ChangeSource&>(hardware);
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
  // What prepared DRA claims hold never goes to a container through this plugin too.
  DraClaimWatch claims(flags.dra_checkpoint.value_or(std::string(kDefaultDraCheckpoint)), &metrics);
  if (Status s = claims.Start(); !s) {
    spdlog::error("--dra-checkpoint: {}", s.error().message);
    return kExitFailure;
  }
  PluginServer server(registry, server_options, &metrics, &claims);
  if (Status s = server.Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  std::unique_ptr<HttpEndpoint> http;
  if (MetricsEnabled(flags.metrics_address)) {
    auto endpoint = StartHealthEndpoint(flags.metrics_address,
                                        WithRulesMetrics(PluginHealth(metrics, registry), reload),
                                        "--metrics-addr");
    if (!endpoint) {
      spdlog::error("{}", endpoint.error().message);
      server.Stop();
      return kExitUsage;
    }
    http = std::move(*endpoint);
    spdlog::info("metrics on {} (port {})", flags.metrics_address, http->port());
  }

  // What start-up touched goes back (memory.h; dra_bench's idle RSS).
  IdleUntilStop();
  spdlog::info("signal {}: stopping", StopSignal());
  http.reset();
  cdi_feed.Stop();
  feed.Stop();
  server.Stop();
  claims.Stop();
  return kExitOk;
}

}  // namespace

int RunDevicePluginCli(int argc, char** argv) {
  // The DRA modes have flags only their program knows: hand the whole command line over
  // before parsing it here. The stop signals stay blocked across exec; that program's
  // InstallStopHandlers takes one that came meanwhile.
  if (const std::string mode = ModeInArgs(argc, argv); mode == "dra" || mode == "both") {
    BlockStopSignals();
    SetUpLogging("edgefd-deviceplugin", "info");
    return ExecDraProgram(argv, mode);
  }
  InstallStopHandlers();
  DevicePluginFlags flags;
  CLI::App app(kDescription, "edgefd-deviceplugin");
  ConfigureApp(app, kFooter);
  AddDevicePluginFlags(app, flags);
  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  // Logs go to stderr; stdout carries only what --list prints.
  SetUpLogging("edgefd-deviceplugin", flags.log_level);
  // The device plugin talks to no API server: a rules reload is logged and counted only.
  RulesReload reload(flags.discovery.discovery.rule_files);
  InventoryFeed::DiscoverFn discover = MakeDiscover(flags, &reload);
  if (flags.list) return ListResources(discover, flags.output);
  auto watch = MakeWatchOptions(flags);
  if (!watch) {
    spdlog::error("{}", watch.error().message);
    return kExitUsage;
  }
  return Serve(flags, std::move(discover), *watch, reload);
}

}  // namespace edgefd::deviceplugin
