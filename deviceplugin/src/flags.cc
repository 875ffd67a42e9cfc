#include "edgefd/deviceplugin/flags.h"

#include <spdlog/spdlog.h>

#include <iostream>

#include "edgefd/common/output.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/discovery/warning_log.h"

namespace edgefd::deviceplugin {

void AddDevicePluginFlags(CLI::App& app, DevicePluginFlags& flags) {
  app.add_option("--mode", flags.mode,
                 "device-plugin (the kubelet device-plugin API), dra (Dynamic Resource "
                 "Allocation: ResourceSlices, the DRA kubelet plugin, CDI specs; see --mode dra "
                 "--help) or both (default: " +
                     flags.mode + ")")
      ->type_name("MODE")
      ->check(OneOf({"device-plugin", "dra", "both"}));
  app.add_flag("--list", flags.list, "print the resources and devices it would serve, then exit");
  AddOutputFlag(app, flags.output, "--list (and the DRA modes' --print-slices)");
  AddDiscoveryFlags(app, flags.discovery);
  app.add_option_function<std::string>(
         "--inventory", [&flags](const std::string& file) { flags.inventory_file = file; },
         "use a static inventory (YAML/JSON) instead of discovery")
      ->type_name("FILE")
      ->group("Discovery");
  const std::string group = "Device plugin";
  app.add_option("--kubelet-dir", flags.server.kubelet_dir,
                 "kubelet device-plugin directory holding kubelet.sock (default: "
                 "/var/lib/kubelet/device-plugins)")
      ->type_name("DIR")
      ->group(group);
  app.add_option("--socket-prefix", flags.server.socket_prefix,
                 "socket file name prefix (default: edgefd-)")
      ->type_name("P")
      ->group(group);
  app.add_flag("--cdi", flags.cdi,
               "also name each allocated device's CDI device in Allocate and keep the CDI "
               "spec in --cdi-dir current (DRA modes always keep the specs)")
      ->group(group);
  app.add_option("--cdi-dir", flags.cdi_dir,
                 "where the CDI specs go (default: " + std::string(kDefaultCdiDir) + ")")
      ->type_name("DIR")
      ->group(group);
  app.add_option_function<std::string>(
         "--dra-checkpoint", [&flags](const std::string& file) { flags.dra_checkpoint = file; },
         "the DRA driver's checkpoint of prepared claims (the DRA modes write it; the device "
         "plugin follows it with inotify): a device a prepared claim holds is withdrawn from "
         "the kubelet (listed Unhealthy, refused by Allocate), and while the file cannot be "
         "read every device is; a missing file means no claims (default: " +
             std::string(kDefaultDraCheckpoint) +
             "; in the DRA modes <kubelet-plugins-dir>/edgefd.io/checkpoint.json)")
      ->type_name("FILE")
      ->group(group);
  AddMetricsAddrFlag(app, flags.metrics_address)
      ->description(
          "serve /healthz, /readyz and /metrics on HOST:PORT, [IPV6]:PORT or :PORT "
          "(default: :9479; none or an empty ADDR turns it off)");
  AddLogLevelFlag(app, flags.log_level);
}

InventoryFeed::DiscoverFn MakeDiscover(const DevicePluginFlags& flags, RulesReload* reload) {
  if (flags.inventory_file) {
    return [path = *flags.inventory_file]() { return LoadInventoryFile(path); };
  }
  // One Discoverer for every hotplug event: the devicetree is read again only when it can
  // have changed (the feed calls this under its lock).
  auto discoverer = std::make_shared<Discoverer>(flags.discovery.discovery);
  auto log = std::make_shared<WarningLog>();
  return [discoverer, reload, log]() -> Result<Inventory> {
    auto report = discoverer->Run();
    if (!report) return report.error();
    log->Log(report->warnings);
    if (reload != nullptr) reload->Observe(*report);
    return std::move(report->inventory);
  };
}

Result<WatchOptions> MakeWatchOptions(const DevicePluginFlags& flags) {
  WatchOptions watch;
  watch.rescan = flags.discovery.rescan;
  if (flags.inventory_file) return watch;
  auto rules = LoadRules(flags.discovery.discovery.rule_files);
  if (!rules) return rules.error();
  watch.subsystems = UdevSubsystems(*rules);
  return watch;
}

namespace {

// --list's document: each resource with its variables and devices.
Json ResourcesJson(const DeviceRegistry& registry) {
  Json resources = Json::array();
  for (const std::string& name : registry.ResourceNames()) {
    auto snapshot = registry.Snapshot(name);
    if (!snapshot) continue;
    Json r = {{"resource", name}, {"devicesEnv", EnvVarName(*snapshot)}};
    if (snapshot->kind == ResourceKind::kAccelerator)
      r["devnodesEnv"] = DevnodesEnvVarName(*snapshot);
    Json devices = Json::array();
    for (const PluginDevice& d : snapshot->devices) {
      Json device = {{"id", d.id}, {"healthy", d.healthy && d.present}};
      if (d.numa_node >= 0) device["numaNode"] = d.numa_node;
      if (d.group >= 0) device["group"] = d.group;
      device["devnodes"] = d.devnodes;
      devices.push_back(std::move(device));
    }
    r["devices"] = std::move(devices);
    resources.push_back(std::move(r));
  }
  return {{"resources", std::move(resources)}};
}

std::string ResourcesText(const Json& doc) {
  std::string out;
  for (const Json& r : doc["resources"]) {
    out += r["resource"].get<std::string>() + " (" + r["devicesEnv"].get<std::string>();
    if (r.contains("devnodesEnv")) out += ", " + r["devnodesEnv"].get<std::string>();
    out += ")\n";
    for (const Json& d : r["devices"]) {
      out += "  " + d["id"].get<std::string>() +
             (d["healthy"].get<bool>() ? " Healthy" : " Unhealthy");
      if (d.contains("numaNode")) out += " numa=" + std::to_string(d["numaNode"].get<int>());
      if (d.contains("group")) out += " group=" + std::to_string(d["group"].get<int>());
      for (const Json& n : d["devnodes"]) out += " " + n.get<std::string>();
      out += "\n";
    }
  }
  if (doc["resources"].empty()) out += "no resources\n";
  return out;
}

}  // namespace

int ListResources(const InventoryFeed::DiscoverFn& discover, const std::string& format) {
  auto inventory = discover();
  if (!inventory) {
    spdlog::error("{}", inventory.error().message);
    return kExitUsage;
  }
  InventoryRegistry registry;
  registry.Update(*inventory);
  Json doc = ResourcesJson(registry);
  std::cout << (format == "text" ? ResourcesText(doc) : DumpDocument(doc, format));
  return kExitOk;
}

}  // namespace edgefd::deviceplugin
