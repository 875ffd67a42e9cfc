#include "edgefd/dra/cli.h"

#include <signal.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "edgefd/agent/kube.h"
#include "edgefd/common/health.h"
#include "edgefd/common/json.h"
#include "edgefd/common/program.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/dra/claims.h"
#include "edgefd/dra/device_classes.h"
#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/metrics.h"
#include "edgefd/dra/publisher.h"
#include "stop_signals.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using deviceplugin::CdiSpecDir;
using deviceplugin::CdiSpecFeed;
using deviceplugin::InventoryFeed;
using deviceplugin::InventoryRegistry;
using deviceplugin::PluginServer;
using deviceplugin::PluginServerOptions;

constexpr const char* kName = "edgefd-deviceplugin";

struct Flags {
  std::string mode = "dra";
  // Discovery and the device plugin, as edgefd-deviceplugin has them.
  DiscoveryOptions discovery;
  std::optional<std::string> inventory_file;
  PluginServerOptions server;
  std::string metrics_address = ":9479";
  int rescan_seconds = 30;
  std::string log_level = "info";
  bool cdi = false;
  std::string cdi_dir = std::string(deviceplugin::kDefaultCdiDir);
  // DRA.
  std::string node_name;
  std::string kubeconfig;
  bool insecure_skip_tls_verify = false;
  KubeletPluginOptions plugin;
  std::string resource_api = "auto";
  std::string device_taints = "auto";
  int resync_seconds = 30;
  bool print_device_classes = false;
  bool print_extended_resources = false;
  bool print_slices = false;
};

constexpr const char* kDescription = R"(
The DRA kubelet plugin of edgefd (driver edgefd.io), over the same discovery as the device
plugin: publishes this node's accelerators and big/mid/little cores as ResourceSlices (one pool
per node), prepares allocated ResourceClaims for the kubelet (NodePrepareResources) and writes
the CDI specs the container runtime injects. --mode both also serves the device plugin.
Runs until SIGTERM or SIGINT.)";

// Parses argv into `flags`; an exit code when the program should stop right away.
std::optional<int> Parse(int argc, char** argv, Flags& flags) {
  CLI::App app(kDescription, kName);
  app.set_version_flag("--version", std::string(kName) + " " + std::string(Version()));
  app.add_option("--mode", flags.mode, "dra (default here) or both")
      ->check(CLI::IsMember({"dra", "both"}));
  // Discovery, as in the device plugin.
  std::string root, dtb, inventory;
  std::vector<std::string> configs;
  app.add_option("--root", root, "discover below DIR (the DaemonSet: /host)");
  app.add_option("--dtb", dtb, "read this devicetree blob instead of the live tree");
  app.add_option("--config", configs, "extra accelerator rules (YAML); repeatable");
  bool udev = false;
  CLI::Option* udev_flag =
      app.add_flag("--udev,!--no-udev", udev, "enumerate accelerators with libudev");
  app.add_option("--inventory", inventory, "a static inventory (YAML) instead of discovery");
  app.add_option("--rescan", flags.rescan_seconds,
                 "seconds between rescans when udev's netlink monitor cannot run (0: never)")
      ->check(CLI::Range(0, 86400));
  app.add_option("--metrics-addr,--metrics-address", flags.metrics_address,
                 "serve /metrics, /healthz, /readyz on HOST:PORT (\"none\": off)");
  app.add_option("--log-level", flags.log_level, "trace, debug, info, warn, error, off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  // The device plugin (--mode both).
  std::string kubelet_dir;
  app.add_option("--kubelet-dir", kubelet_dir, "kubelet device-plugin directory (--mode both)");
  app.add_option("--socket-prefix", flags.server.socket_prefix, "device-plugin socket prefix");
  app.add_flag("--cdi", flags.cdi, "device plugin: name CDI devices in Allocate");
  app.add_option("--cdi-dir", flags.cdi_dir, "CDI spec directory (default /var/run/cdi)");
  // DRA.
  app.add_option("--node-name", flags.node_name, "this node's name (default: $NODE_NAME)");
  app.add_option("--kubeconfig", flags.kubeconfig, "kubeconfig file (default: in-cluster)");
  app.add_flag("--insecure-skip-tls-verify", flags.insecure_skip_tls_verify,
               "do not verify the API server's certificate (tests only)");
  std::string plugins_dir, registry_dir;
  app.add_option("--kubelet-plugins-dir", plugins_dir,
                 "kubelet plugin directory (default /var/lib/kubelet/plugins)");
  app.add_option("--kubelet-registry-dir", registry_dir,
                 "kubelet plugin registration directory (default "
                 "/var/lib/kubelet/plugins_registry)");
  app.add_option("--resource-api", flags.resource_api,
                 "resource.k8s.io version: auto (newest served), v1, v1beta2, v1beta1")
      ->check(CLI::IsMember({"auto", "v1", "v1beta2", "v1beta1"}));
  app.add_option("--device-taints", flags.device_taints,
                 "taint vanished devices a pod holds: auto (if the API server keeps taints), on, "
                 "off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  app.add_option("--resync", flags.resync_seconds,
                 "seconds between checks that the ResourceSlices are still as written")
      ->check(CLI::Range(1, 86400));
  app.add_flag("--print-device-classes", flags.print_device_classes,
               "print the DeviceClasses for the rules (built-in and --config) and exit");
  app.add_flag("--print-extended-resources", flags.print_extended_resources,
               "print the extendedResourceName patch for those DeviceClasses and exit");
  app.add_flag("--print-slices", flags.print_slices,
               "print the ResourceSlices this node would publish (JSON) and exit");
  app.footer("Exit codes: 0 clean stop, 1 runtime failure, 2 bad usage or input.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    std::cout << kName << " " << Version() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::cerr << kName << ": " << e.what() << " (see --help)\n";
    return kExitUsage;
  }
  if (!root.empty()) flags.discovery.root = root;
  if (!dtb.empty()) flags.discovery.dtb = dtb;
  for (const std::string& c : configs) flags.discovery.rule_files.emplace_back(c);
  if (udev_flag->count() > 0) flags.discovery.udev = udev;
  if (!inventory.empty()) flags.inventory_file = inventory;
  if (!kubelet_dir.empty()) flags.server.kubelet_dir = kubelet_dir;
  if (!plugins_dir.empty()) flags.plugin.plugins_dir = plugins_dir;
  if (!registry_dir.empty()) flags.plugin.registry_dir = registry_dir;
  if (flags.node_name.empty()) {
    const char* env = std::getenv("NODE_NAME");
    if (env != nullptr) flags.node_name = env;
  }
  spdlog::set_default_logger(spdlog::stderr_logger_mt(kName));
  spdlog::set_level(spdlog::level::from_str(flags.log_level));
  return std::nullopt;
}

Result<std::unique_ptr<ApiTransport>> MakeClient(const Flags& flags) {
  auto config = flags.kubeconfig.empty() ? InClusterConfig() : LoadKubeconfig(flags.kubeconfig);
  if (!config) return config.error();
  config->insecure_skip_tls_verify |= flags.insecure_skip_tls_verify;
  return MakeKubeClient(*config);
}

// The Node's UID for the slices' owner reference; empty (with a warning) when not readable.
std::string NodeUid(ApiTransport& api, const std::string& node) {
  auto response = api.Send("GET", "/api/v1/nodes/" + node, "", "");
  if (!response || response->status != 200) {
    spdlog::warn("cannot read Node {} ({}); ResourceSlices get no owner reference", node,
                 response ? DescribeFailure("GET", *response) : response.error().message);
    return {};
  }
  return StringAt(Json::parse(response->body, nullptr, /*allow_exceptions=*/false),
                  "/metadata/uid");
}

int PrintAndExit(const Flags& flags, const InventoryFeed::DiscoverFn& discover) {
  if (flags.print_device_classes || flags.print_extended_resources) {
    auto rules = LoadRules(flags.discovery.rule_files);
    if (!rules) {
      std::cerr << kName << ": " << rules.error().message << "\n";
      return kExitUsage;
    }
    std::cout << (flags.print_device_classes ? DeviceClassesYaml(*rules)
                                             : ExtendedResourcePatchYaml(*rules));
    return kExitOk;
  }
  auto inventory = discover();
  if (!inventory) {
    std::cerr << kName << ": " << inventory.error().message << "\n";
    return kExitUsage;
  }
  InventoryRegistry registry(*inventory);
  const std::string node = flags.node_name.empty() ? "NODE" : flags.node_name;
  ResourceApi api(flags.resource_api == "auto" ? "v1" : flags.resource_api);
  auto parts = SplitPool(PoolDevices(deviceplugin::AllSnapshots(registry), {}, false));
  Json list = Json::array();
  for (size_t i = 0; i < parts.size(); ++i) {
    list.push_back(SliceJson(api, SliceTarget{node, "", 1, parts.size()}, i, parts[i]));
  }
  std::cout << DumpJson(list, 2) << "\n";
  return kExitOk;
}

}  // namespace

int RunDraCli(int argc, char** argv) {
  Flags flags;
  if (auto code = Parse(argc, argv, flags)) return *code;

  InventoryFeed::DiscoverFn discover;
  if (flags.inventory_file) {
    discover = [path = *flags.inventory_file]() { return deviceplugin::LoadInventoryFile(path); };
  } else {
    discover = [options = flags.discovery]() -> Result<Inventory> {
      auto report = Discover(options);
      if (!report) return report.error();
      return std::move(report->inventory);
    };
  }
  if (flags.print_device_classes || flags.print_extended_resources || flags.print_slices) {
    return PrintAndExit(flags, discover);
  }
  if (flags.node_name.empty()) {
    std::cerr << kName
              << ": the node name is unknown: set --node-name or $NODE_NAME (the "
                 "DaemonSet sets it from spec.nodeName)\n";
    return kExitUsage;
  }

  // Before any thread starts, so that only its watcher sees the stop signals.
  StopSignals stop;
  ::signal(SIGPIPE, SIG_IGN);

  // cpprestsdk's default pool has 40 threads; two carry this plugin's few requests.
  LimitHttpThreads(2);
  auto client = MakeClient(flags);
  if (!client) {
    std::cerr << kName << ": " << client.error().message << "\n";
    return kExitUsage;
  }
  ApiTransport& api = **client;

  // Hardware → registry, as in the device plugin.
  deviceplugin::Metrics dp_metrics;
  InventoryRegistry registry;
  WatchOptions watch;
  if (!flags.inventory_file) {
    auto rules = LoadRules(flags.discovery.rule_files);
    if (!rules) {
      std::cerr << kName << ": " << rules.error().message << "\n";
      return kExitUsage;
    }
    watch.subsystems = UdevSubsystems(*rules);
  }
  watch.rescan = flags.rescan_seconds > 0 ? std::chrono::milliseconds(flags.rescan_seconds * 1000)
                                          : std::chrono::hours(24 * 365);
  HotplugWatcher udev_watcher(watch);
  deviceplugin::NoChangeSource no_changes;
  ChangeSource& changes = flags.inventory_file ? static_cast<ChangeSource&>(no_changes)
                                               : static_cast<ChangeSource&>(udev_watcher);
  InventoryFeed feed(registry, discover, changes, &dp_metrics);
  if (Status s = feed.Start(); !s) {
    std::cerr << kName << ": " << s.error().message << "\n";
    return kExitUsage;
  }
  if (!flags.inventory_file)
    spdlog::info("watching for hardware changes ({})", udev_watcher.mode());

  CdiSpecDir cdi_dir(flags.cdi_dir);
  CdiSpecFeed cdi_feed(registry, cdi_dir);
  if (Status s = cdi_feed.Start(); !s) {
    std::cerr << kName << ": CDI: " << s.error().message << "\n";
    return kExitFailure;
  }

  // The device plugin needs no API server: it serves the kubelet whatever the API server does.
  std::unique_ptr<PluginServer> dp_server;
  if (flags.mode == "both") {
    flags.server.cdi = flags.cdi;
    dp_server = std::make_unique<PluginServer>(registry, flags.server, &dp_metrics);
    if (Status s = dp_server->Start(); !s) {
      std::cerr << kName << ": " << s.error().message << "\n";
      return kExitFailure;
    }
  }

  // The API server may be restarting: keep asking, but stop at once on SIGTERM.
  std::optional<ResourceApi> version;
  if (flags.resource_api != "auto") version.emplace(flags.resource_api);
  for (auto delay = std::chrono::milliseconds(500); !version;
       delay = std::min(delay * 2, std::chrono::milliseconds(30000))) {
    auto found = DiscoverResourceApi(api);
    if (found) {
      version = *found;
      break;
    }
    spdlog::warn("{} (retrying in {} ms)", found.error().message, delay.count());
    if (stop.WaitFor(delay)) return kExitOk;
  }
  spdlog::info("talking {} to {}", version->GroupVersion(),
               flags.kubeconfig.empty() ? "the in-cluster API server" : flags.kubeconfig);

  const fs::path driver_dir = flags.plugin.plugins_dir / std::string(kDriverName);
  ClaimPreparer claims(registry, api, *version, cdi_dir, Checkpoint(driver_dir / "checkpoint.json"),
                       flags.node_name);
  if (Status s = claims.Start(); !s) {
    std::cerr << kName << ": " << s.error().message << "\n";
    return kExitFailure;
  }
  auto taint_mode = ParseTaintMode(flags.device_taints);
  SlicePublisher::Options publish;
  publish.node = flags.node_name;
  publish.node_uid = NodeUid(api, flags.node_name);
  publish.taints = *taint_mode;
  publish.resync = std::chrono::seconds(flags.resync_seconds);
  SlicePublisher publisher(registry, api, *version, publish, [&] { return claims.HeldDevices(); });
  claims.SetOnChange([&] { publisher.Trigger(); });
  publisher.Start();
  DeviceLossReporter loss(registry, claims, api, *version, flags.node_name,
                          [&] { return publisher.Stats().taints; });
  loss.Start();

  KubeletPlugin plugin(claims, flags.plugin);
  // After a kubelet restart (which wipes this node's slices) the pool is written again.
  plugin.SetOnRegistered([&] {
    publisher.Trigger();
    publisher.CheckIn(std::chrono::seconds(5));
  });
  if (Status s = plugin.Start(); !s) {
    std::cerr << kName << ": " << s.error().message << "\n";
    return kExitFailure;
  }

  std::unique_ptr<HttpEndpoint> http;
  if (MetricsEnabled(flags.metrics_address)) {
    auto state = [&] {
      return DraState{publisher.Stats(), plugin.Stats(), plugin.Registration(),
                      claims.Claims().size()};
    };
    auto endpoint = StartHealthEndpoint(
        flags.metrics_address,
        DraHealth(state,
                  dp_server ? deviceplugin::PluginHealth(dp_metrics, registry) : HealthChecks{}),
        "--metrics-addr");
    if (!endpoint) {
      spdlog::error("{}", endpoint.error().message);
      return kExitUsage;
    }
    http = std::move(*endpoint);
    spdlog::info("metrics on {} (port {})", flags.metrics_address, http->port());
  }

  stop.Wait();
  http.reset();
  plugin.Stop();
  loss.Stop();
  publisher.Stop();
  if (dp_server) dp_server->Stop();
  feed.Stop();
  stop.Done();
  return kExitOk;
}

}  // namespace edgefd::dra
