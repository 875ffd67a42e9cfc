#include "edgefd/dra/cli.h"

#include <malloc.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>
#include <optional>

#include "edgefd/common/cli.h"
#include "edgefd/common/file_watch.h"
#include "edgefd/common/health.h"
#include "edgefd/common/json.h"
#include "edgefd/common/memory.h"
#include "edgefd/common/output.h"
#include "edgefd/common/stop_signals.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/flags.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/dra/calibration.h"
#include "edgefd/dra/claims.h"
#include "edgefd/dra/device_classes.h"
#include "edgefd/dra/kubelet_plugin.h"
#include "edgefd/dra/metrics.h"
#include "edgefd/dra/pod_resources.h"
#include "edgefd/dra/publisher.h"
#include "edgefd/dra/recovery_api.h"
#include "edgefd/dra/uninstall.h"
#include "edgefd/kube/api.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using deviceplugin::CdiSpecDir;
using deviceplugin::CdiSpecFeed;
using deviceplugin::DevicePluginFlags;
using deviceplugin::InventoryFeed;
using deviceplugin::InventoryRegistry;
using deviceplugin::PluginServer;

// How often the pool learns what the device plugin handed out (PodResources has no watch).
constexpr auto kPodResourcesPoll = std::chrono::seconds(5);

// Users run it as `edgefd-deviceplugin --mode dra`: its messages carry that name.
constexpr char kName[] = "edgefd-deviceplugin";

constexpr char kDescription[] =
    R"(The DRA kubelet plugin of edgefd (driver edgefd.io), over the same discovery as the device
plugin: publishes this node's accelerators and big/mid/little cores as ResourceSlices (one pool
per node), prepares allocated ResourceClaims for the kubelet (NodePrepareResources) and writes
the CDI specs the container runtime injects. --mode both also serves the device plugin. Runs
until SIGTERM or SIGINT.)";

constexpr char kFooter[] =
    R"(Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or bad input.)";

struct Flags {
  DevicePluginFlags dp;
  KubeFlags kube;
  KubeletPluginOptions plugin;
  fs::path pod_resources_socket{std::string(kDefaultPodResourcesSocket)};
  std::string resource_api = "auto";
  std::string device_taints = "auto";
  bool print_device_classes = false;
  bool print_extended_resources = false;
  bool print_slices = false;
  std::string daemonset;  // --daemonset: remove the CDI specs when it is being uninstalled
  fs::path calibration;   // --calibration: the measured speed on the CPU devices
};

// The flags only the DRA modes have, in the group "DRA".
void AddDraFlags(CLI::App& app, Flags& flags) {
  const std::string group = "DRA";
  app.add_option("--kubelet-registry-dir", flags.plugin.registry_dir,
                 "the kubelet's plugin registration directory (default: "
                 "/var/lib/kubelet/plugins_registry)")
      ->type_name("DIR")
      ->group(group);
  app.add_option("--kubelet-plugins-dir", flags.plugin.plugins_dir,
                 "the kubelet's plugin directory; the DRA socket and the checkpoint go in its "
                 "edgefd.io/ (default: /var/lib/kubelet/plugins)")
      ->type_name("DIR")
      ->group(group);
  app.add_option("--pod-resources-socket", flags.pod_resources_socket,
                 "the kubelet's PodResources API (v1, List): a claim is prepared only when it "
                 "says no container holds the claim's devices through the device plugin, and "
                 "refused while it cannot say (missing, refusing, or no answer within 2 s) "
                 "(default: " +
                     std::string(kDefaultPodResourcesSocket) + ")")
      ->type_name("SOCKET")
      ->group(group);
  app.add_option("--resource-api", flags.resource_api,
                 "the resource.k8s.io version to talk: auto (the newest the API server serves), "
                 "v1, v1beta2 or v1beta1 (default: auto)")
      ->type_name("VERSION")
      ->check(OneOf({"auto", "v1", "v1beta2", "v1beta1"}))
      ->group(group);
  app.add_option("--device-taints", flags.device_taints,
                 "taint vanished devices that a pod holds: auto (when the API server keeps "
                 "device taints), on or off (default: auto)")
      ->type_name("WHEN")
      ->check(OneOf({"auto", "on", "off"}))
      ->group(group);
  app.add_option("--daemonset", flags.daemonset,
                 "the DaemonSet this pod belongs to, in $POD_NAMESPACE: at a stop, when the API "
                 "server says it is gone or being deleted (an uninstall, not a restart or an "
                 "upgrade), the CDI specs in --cdi-dir that no prepared claim needs are removed "
                 "(default: none, they stay)")
      ->type_name("NAME")
      ->group(group);
  app.add_option("--calibration", flags.calibration,
                 "publish the measured speed of each core class from this 'edgefd-pipeline "
                 "calibrate' output (the labeller's --calibration file) on the CPU devices: "
                 "attributes mflops (int, MFLOP/s of one core) and calibrationModel; followed "
                 "as it changes, and left out (with an error) while it cannot be read "
                 "(default: none)")
      ->type_name("FILE")
      ->group(group);
  app.add_flag("--print-device-classes", flags.print_device_classes,
               "print the DeviceClasses for the rules (built-in and --config), then exit")
      ->group(group);
  app.add_flag("--print-extended-resources", flags.print_extended_resources,
               "print the extendedResourceName patch for those DeviceClasses, then exit")
      ->group(group);
  app.add_flag("--print-slices", flags.print_slices,
               "print the ResourceSlices this node would publish (as --output says), then exit")
      ->group(group);
}

// Parses the command line into `flags`; an exit code when the program should stop now.
std::optional<int> ParseFlags(int argc, char** argv, Flags& flags) {
  CLI::App app(kDescription, kName);
  ConfigureApp(app, kFooter);
  // Its messages carry the name users run it by; --version says which program answers.
  app.set_version_flag("--version",
                       std::string("edgefd-deviceplugin-dra ") + std::string(Version()) +
                           " (edgefd-deviceplugin --mode dra|both)",
                       "show the version and exit");
  flags.dp.mode = "dra";
  AddDevicePluginFlags(app, flags.dp);
  flags.kube.resync = std::chrono::seconds(30);
  AddKubeFlags(app, flags.kube, "the node's ResourceSlices");
  AddDraFlags(app, flags);
  if (auto code = ParseCommandLine(app, argc, argv)) return code;
  if (flags.dp.mode == "device-plugin") {
    std::fprintf(stderr,
                 "%s: --mode device-plugin is served by edgefd-deviceplugin itself\n"
                 "Try '%s --help'.\n",
                 kName, kName);
    return kExitUsage;
  }
  if (flags.kube.node_name.empty()) flags.kube.node_name = kube::DefaultNodeName();
  SetUpLogging(kName, flags.dp.log_level);
  return std::nullopt;
}

// The Node's UID for the slices' owner reference; empty (with a warning) when not readable.
std::string NodeUid(kube::ApiTransport& api, const std::string& node) {
  auto response = kube::Api(api).GetNode(node);
  if (!response || response->status != 200) {
    spdlog::warn("cannot read Node {} ({}); ResourceSlices get no owner reference", node,
                 response ? DescribeFailure("GET", *response) : response.error().message);
    return {};
  }
  return StringAt(ParseJsonOrNull(response->body), "/metadata/uid");
}

// --print-slices --output text: a slice per block, a device per line with its attributes.
std::string SlicesText(const Json& slices) {
  std::string out;
  for (const Json& slice : slices) {
    const Json& devices = slice["spec"]["devices"];
    out += "slice " + slice["metadata"]["name"].get<std::string>() + " (pool " +
           slice["spec"]["pool"]["name"].get<std::string>() + ", " +
           std::to_string(devices.size()) + " devices)\n";
    for (const Json& d : devices) {
      const Json& body = d.contains("basic") ? d["basic"] : d;
      out += "  " + d["name"].get<std::string>();
      for (const auto& [key, typed] : body["attributes"].items()) {
        // {"int": 4}, {"version": "2.1.0"}: one typed member
        for (const Json& value : typed) {
          out += " " + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
        }
      }
      if (body.contains("taints")) {
        for (const Json& t : body["taints"]) out += " taint=" + t["key"].get<std::string>();
      }
      out += "\n";
    }
  }
  return out;
}

// --print-device-classes, --print-extended-resources, --print-slices.
int PrintAndExit(const Flags& flags, const InventoryFeed::DiscoverFn& discover) {
  if (flags.print_device_classes || flags.print_extended_resources) {
    auto rules = LoadRules(flags.dp.discovery.discovery.rule_files);
    if (!rules) {
      spdlog::error("{}", rules.error().message);
      return kExitUsage;
    }
    std::cout << (flags.print_device_classes ? DeviceClassesYaml(*rules)
                                             : ExtendedResourcePatchYaml(*rules));
    return kExitOk;
  }
  auto inventory = discover();
  if (!inventory) {
    spdlog::error("{}", inventory.error().message);
    return kExitUsage;
  }
  InventoryRegistry registry(*inventory);
  ResourceApi api(flags.resource_api == "auto" ? "v1" : flags.resource_api);
  std::vector<SliceDevice> devices = PoolDevices(deviceplugin::AllSnapshots(registry), {}, false);
  if (!flags.calibration.empty()) {
    // A dry run says what is wrong and exits, as the labeller's --dry-run does; the serving
    // driver publishes the cores without the speed instead.
    auto measured = ReadCalibrationSummary(flags.calibration);
    if (!measured) {
      spdlog::error("--calibration {}", measured.error().message);
      return kExitUsage;
    }
    AddCalibrationAttributes(*measured, devices);
  }
  auto parts = SplitPool(devices);
  Json list = Json::array();
  for (size_t i = 0; i < parts.size(); ++i) {
    list.push_back(
        SliceJson(api, SliceTarget{flags.kube.node_name, "", 1, parts.size()}, i, parts[i]));
  }
  std::cout << (flags.dp.output == "text" ? SlicesText(list) : DumpDocument(list, flags.dp.output));
  return kExitOk;
}

// The resource.k8s.io version: the flag's, or the newest the API server serves. The API server
// may be restarting: keep asking, but give up at once on SIGTERM (nullopt).
std::optional<ResourceApi> ChooseResourceApi(const std::string& flag, kube::ApiTransport& api,
                                             StopSignals& stop) {
  if (flag != "auto") return ResourceApi(flag);
  for (auto delay = std::chrono::milliseconds(500);;
       delay = std::min(delay * 2, std::chrono::milliseconds(30000))) {
    auto found = DiscoverResourceApi(api);
    if (found) return *found;
    spdlog::warn("{} (retrying in {} ms)", found.error().message, delay.count());
    if (stop.WaitFor(delay)) return std::nullopt;
  }
}

// Everything Serve runs, in the order it starts (each part may read those before it); Stop
// stops them the other way round, whichever way Serve returns.
struct Driver {
  explicit Driver(const Flags& f) : flags(f) {}
  ~Driver() { Stop(); }
  void Stop();

  const Flags& flags;
  fs::path checkpoint;
  deviceplugin::Metrics dp_metrics;
  InventoryRegistry registry;
  std::unique_ptr<HotplugWatcher> udev_watcher;
  std::unique_ptr<FollowRules> follow_rules;  // the watcher's subsystems follow the rules
  std::unique_ptr<ChangeSource> rules_watcher;
  std::unique_ptr<ChangeSources> hardware;  // both of them
  deviceplugin::NoChangeSource no_changes;
  std::unique_ptr<InventoryFeed> feed;
  std::unique_ptr<CdiSpecDir> cdi_dir;
  std::unique_ptr<CdiSpecFeed> cdi_feed;
  std::unique_ptr<deviceplugin::DraClaimWatch> held;
  std::unique_ptr<PluginServer> dp_server;
  std::unique_ptr<ClaimPreparer> claims;
  SlicePublisher* pool = nullptr;  // for the holdings' callback, set once the publisher is
  std::unique_ptr<DevicePluginHoldings> taken;
  std::unique_ptr<CalibrationFile> calibration;
  std::unique_ptr<SlicePublisher> publisher;
  std::unique_ptr<FileWatcher> calibration_watch;  // triggers the publisher
  std::unique_ptr<DeviceLossReporter> loss;
  std::unique_ptr<KubeletPlugin> plugin;
  std::unique_ptr<HttpEndpoint> http;
  bool stopped = false;
};

void Driver::Stop() {
  if (stopped) return;
  stopped = true;
  http.reset();
  if (plugin) plugin->Stop();
  if (loss) loss->Stop();
  // The poller triggers the publisher: it stops first.
  if (taken) taken->Stop();
  if (calibration_watch) calibration_watch->Stop();
  if (publisher) publisher->Stop();
  if (dp_server) dp_server->Stop();
  if (held) held->Stop();
  if (cdi_feed) cdi_feed->Stop();
  if (feed) feed->Stop();
}

// Hardware → registry (as in the device plugin) → CDI specs; an exit code on failure.
std::optional<int> StartHardware(Driver& d, InventoryFeed::DiscoverFn discover,
                                 const WatchOptions& watch, RulesReload& reload) {
  d.udev_watcher = std::make_unique<HotplugWatcher>(watch);
  if (!d.flags.dp.inventory_file) {
    d.follow_rules = std::make_unique<FollowRules>(reload, d.udev_watcher.get());
  }
  // A change of the rules files (a ConfigMap update) rediscovers like a hardware event.
  d.rules_watcher = MakeRulesWatcher(d.flags.dp.discovery.discovery);
  d.hardware = std::make_unique<ChangeSources>(
      std::vector<ChangeSource*>{d.udev_watcher.get(), d.rules_watcher.get()});
  ChangeSource& changes = d.flags.dp.inventory_file ? static_cast<ChangeSource&>(d.no_changes)
                                                    : static_cast<ChangeSource&>(*d.hardware);
  d.feed = std::make_unique<InventoryFeed>(d.registry, std::move(discover), changes, &d.dp_metrics);
  if (Status s = d.feed->Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitUsage;
  }
  if (!d.flags.dp.inventory_file) {
    if (!d.udev_watcher->warning().empty()) spdlog::warn("{}", d.udev_watcher->warning());
    spdlog::info("watching for hardware changes ({})", d.udev_watcher->mode());
  }
  d.cdi_dir = std::make_unique<CdiSpecDir>(d.flags.dp.cdi_dir);
  d.cdi_feed = std::make_unique<CdiSpecFeed>(d.registry, *d.cdi_dir);
  if (Status s = d.cdi_feed->Start(); !s) {
    spdlog::error("CDI: {}", s.error().message);
    return kExitFailure;
  }
  return std::nullopt;
}

// --mode both: the device plugin, which follows the checkpoint and withdraws what prepared
// claims hold. It needs no API server: it serves the kubelet whatever the API server does.
std::optional<int> StartDevicePlugin(Driver& d) {
  if (d.flags.dp.mode != "both") return std::nullopt;
  d.held = std::make_unique<deviceplugin::DraClaimWatch>(d.checkpoint, &d.dp_metrics);
  if (Status s = d.held->Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  deviceplugin::PluginServerOptions options = d.flags.dp.server;
  options.cdi = d.flags.dp.cdi;
  d.dp_server = std::make_unique<PluginServer>(d.registry, options, &d.dp_metrics, d.held.get());
  if (Status s = d.dp_server->Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  return std::nullopt;
}

// The prepared claims, from the checkpoint or rebuilt from the cluster (then said in an Event
// on the Node); an exit code on failure.
std::optional<int> StartClaims(Driver& d, kube::ApiTransport& api, const ResourceApi& version,
                               PodResourcesClient& pod_resources, const std::string& node_uid) {
  const std::string& node = d.flags.kube.node_name;
  d.claims = std::make_unique<ClaimPreparer>(d.registry, api, version, *d.cdi_dir,
                                             Checkpoint(d.checkpoint), node);
  d.claims->SetAssignments([&pod_resources] { return pod_resources.List(); });
  if (Status s = d.claims->Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  if (auto recovery = d.claims->Recovery()) {
    NodeEvent event{node, node_uid,    "DraCheckpointRecovered", recovery->Message(),
                    true, "edgefd-dra"};
    if (Status s = PostNodeEvent(api, event); !s) {
      spdlog::warn("no Event on Node {}: {}", node, s.error().message);
    }
  }
  return std::nullopt;
}

// The pool of ResourceSlices, what the device plugin handed out (tainted in the pool, so the
// scheduler gives it to no claim; prepare refuses it anyway), and the device-loss reporter.
void StartPool(Driver& d, kube::ApiTransport& api, const ResourceApi& version,
               PodResourcesClient& pod_resources, const std::string& node_uid) {
  SlicePublisher::Options publish;
  publish.node = d.flags.kube.node_name;
  publish.node_uid = node_uid;
  publish.taints = *ParseTaintMode(d.flags.device_taints);  // the parser checked the word
  publish.resync = d.flags.kube.resync;
  d.taken =
      std::make_unique<DevicePluginHoldings>(pod_resources, d.registry, kPodResourcesPoll, [&d] {
        if (d.pool != nullptr) d.pool->Trigger();
      });
  ClaimPreparer& claims = *d.claims;
  d.publisher = std::make_unique<SlicePublisher>(d.registry, api, version, publish,
                                                 [&claims] { return claims.HeldDevices(); });
  SlicePublisher& publisher = *d.publisher;
  d.pool = &publisher;
  DevicePluginHoldings& taken = *d.taken;
  publisher.SetTaken([&taken] { return taken.Names(); });
  if (!d.flags.calibration.empty()) {
    d.calibration = std::make_unique<CalibrationFile>(d.flags.calibration);
    publisher.SetCalibration(d.calibration.get());
    // Every sync reads the file again; a change (an edit, a rename over it, a ConfigMap swap)
    // asks for one at once. Without inotify the resync still picks it up.
    d.calibration_watch = std::make_unique<FileWatcher>(std::vector<fs::path>{d.flags.calibration});
    if (Status s = d.calibration_watch->Start([&publisher] { publisher.Trigger(); }); !s) {
      spdlog::warn("--calibration: {}; changes are seen at the next resync", s.error().message);
      d.calibration_watch.reset();
    }
  }
  claims.SetOnChange([&publisher] { publisher.Trigger(); });
  claims.SetOnConflict([&taken] { taken.Refresh(); });
  publisher.Start();
  taken.Start();
  d.loss = std::make_unique<DeviceLossReporter>(d.registry, claims, api, version, publish.node,
                                                [&publisher] { return publisher.Stats().taints; });
  d.loss->Start();
}

// The kubelet plugin: registration and the DRA service.
std::optional<int> StartKubeletPlugin(Driver& d) {
  d.plugin = std::make_unique<KubeletPlugin>(*d.claims, d.flags.plugin);
  SlicePublisher& publisher = *d.publisher;
  // After a kubelet restart (which wipes this node's slices) the pool is written again.
  d.plugin->SetOnRegistered([&publisher] {
    publisher.Trigger();
    publisher.CheckIn(std::chrono::seconds(5));
  });
  if (Status s = d.plugin->Start(); !s) {
    spdlog::error("{}", s.error().message);
    return kExitFailure;
  }
  return std::nullopt;
}

// /metrics, /healthz and /readyz when --metrics-addr asks for them.
std::optional<int> StartMetrics(Driver& d, const RulesReload& reload) {
  if (!MetricsEnabled(d.flags.dp.metrics_address)) return std::nullopt;
  auto state = [&d] {
    DraState state;
    state.slices = d.publisher->Stats();
    state.plugin = d.plugin->Stats();
    state.registration = d.plugin->Registration();
    state.prepared_claims = d.claims->Claims().size();
    state.claims = d.claims->Stats();
    state.device_plugin_devices = d.taken->Names().size();
    return state;
  };
  HealthChecks device_plugin =
      d.dp_server ? deviceplugin::PluginHealth(d.dp_metrics, d.registry) : HealthChecks{};
  auto endpoint = StartHealthEndpoint(d.flags.dp.metrics_address,
                                      WithRulesMetrics(DraHealth(state, device_plugin), reload),
                                      "--metrics-addr");
  if (!endpoint) {
    spdlog::error("{}", endpoint.error().message);
    return kExitUsage;
  }
  d.http = std::move(*endpoint);
  spdlog::info("metrics on {} (port {})", d.flags.dp.metrics_address, d.http->port());
  return std::nullopt;
}

// --daemonset: after the driver stopped (no spec writer runs), an uninstall removes the CDI
// specs no prepared claim needs. The stop cancelled the shared client: a client of its own.
void RemoveCdiSpecsAtUninstall(const Flags& flags, Driver& d) {
  if (flags.daemonset.empty() || !d.cdi_dir) return;
  std::string ns = kube::PodNamespace();
  if (ns.empty()) {
    spdlog::warn("--daemonset: no namespace (set POD_NAMESPACE): the CDI specs stay");
    return;
  }
  auto client = kube::ConnectToApiServer(
      {flags.kube.kubeconfig, flags.kube.insecure_skip_tls_verify, flags.kube.allow_insecure_http},
      nullptr);
  if (!client) {
    spdlog::warn("--daemonset: {}: the CDI specs stay", client.error().message);
    return;
  }
  std::set<std::string> prepared;
  if (d.claims) {
    for (const auto& [uid, claim] : d.claims->Claims()) prepared.insert(uid);
  }
  kube::Api api(**client);
  RemoveCdiSpecsIfUninstalled(api, ns, flags.daemonset, *d.cdi_dir, prepared);
}

// Serves until SIGTERM/SIGINT: hardware → registry → CDI specs, the device plugin (--mode
// both), the prepared claims, the pool of ResourceSlices, the kubelet plugin, metrics.
int Serve(const Flags& flags, InventoryFeed::DiscoverFn discover, const WatchOptions& watch,
          RulesReload& reload) {
  ::signal(SIGPIPE, SIG_IGN);
  // One client for the publisher, the claim reader (on the kubelet's gRPC threads) and the
  // device-loss reporter: a kept-alive connection per concurrent request.
  std::string server;
  auto client =
      kube::ConnectToApiServer({flags.kube.kubeconfig, flags.kube.insecure_skip_tls_verify,
                                flags.kube.allow_insecure_http, /*shared=*/true},
                               &server);
  if (!client) {
    spdlog::error("{}", client.error().message);
    return kExitUsage;
  }
  kube::ApiTransport& api = **client;
  // What the device plugin handed out, from the kubelet's own record.
  PodResourcesClient pod_resources(flags.pod_resources_socket);
  // A stop cancels the requests in flight, so that no thread waits out a request's timeout.
  StopSignals stop([&api, &pod_resources] {
    api.Cancel();
    pod_resources.Cancel();
  });
  Driver d(flags);
  // One record of prepared claims, written by the claims and, in --mode both, followed by the
  // device plugin.
  d.checkpoint = flags.dp.dra_checkpoint.value_or(flags.plugin.plugins_dir /
                                                  std::string(kDriverName) / "checkpoint.json");
  if (auto code = StartHardware(d, std::move(discover), watch, reload)) return *code;
  if (auto code = StartDevicePlugin(d)) return *code;
  std::optional<ResourceApi> version = ChooseResourceApi(flags.resource_api, api, stop);
  if (!version) return kExitOk;  // stopped while the API server was away
  spdlog::info("talking {} to {}", version->GroupVersion(), server);
  const std::string node_uid = NodeUid(api, flags.kube.node_name);
  reload.SetEventPoster([&api, node = flags.kube.node_name, node_uid](
                            std::string_view reason, const std::string& message, bool warning) {
    NodeEvent event{node, node_uid, std::string(reason), message, warning, "edgefd-dra"};
    if (Status s = PostNodeEvent(api, event); !s) {
      spdlog::warn("no Event on Node {}: {}", node, s.error().message);
    }
  });
  if (auto code = StartClaims(d, api, *version, pod_resources, node_uid)) return *code;
  StartPool(d, api, *version, pod_resources, node_uid);
  if (auto code = StartKubeletPlugin(d)) return *code;
  if (auto code = StartMetrics(d, reload)) return *code;
  // What start-up left behind goes now, and again once the first pass of the pool and the
  // kubelet's registration are surely over (memory.h; dra_bench's idle RSS).
  IdleUntilStop();
  d.Stop();
  RemoveCdiSpecsAtUninstall(flags, d);
  stop.Done();
  return kExitOk;
}

}  // namespace

int RunDraCli(int argc, char** argv) {
  // edgefd-deviceplugin kept the stop signals blocked across exec: one that came meanwhile
  // is taken now.
  InstallStopHandlers();
  // One malloc arena for all threads (gRPC's, the publisher's, the watchers'): the driver
  // allocates little and rarely (a claim, a slice), and each extra arena keeps its own partly
  // used pages (dra_bench --idle-only).
  mallopt(M_ARENA_MAX, 1);
  // The pages the loader touched in libraries libcurl drags in but nothing calls (memory.h).
  ReleaseUnusedLibraryPages();
  Flags flags;
  if (auto code = ParseFlags(argc, argv, flags)) return *code;
  RulesReload reload(flags.dp.discovery.discovery.rule_files);
  InventoryFeed::DiscoverFn discover = deviceplugin::MakeDiscover(flags.dp, &reload);
  if (flags.dp.list) return deviceplugin::ListResources(discover, flags.dp.output);
  if (flags.print_device_classes || flags.print_extended_resources || flags.print_slices) {
    return PrintAndExit(flags, discover);
  }
  if (flags.kube.node_name.empty()) {
    spdlog::error(
        "the node name is unknown: set --node-name or $NODE_NAME (the DaemonSet sets it from "
        "spec.nodeName)");
    return kExitUsage;
  }
  auto watch = deviceplugin::MakeWatchOptions(flags.dp);
  if (!watch) {
    spdlog::error("{}", watch.error().message);
    return kExitUsage;
  }
  return Serve(flags, std::move(discover), *watch, reload);
}

}  // namespace edgefd::dra
