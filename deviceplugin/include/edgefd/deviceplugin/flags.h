#pragma once

// The device plugin's command line, shared by edgefd-deviceplugin and edgefd-deviceplugin-dra
// (what --mode dra|both runs, with the same arguments): one meaning per flag in both.

#include <filesystem>
#include <optional>
#include <string>

#include "edgefd/common/cli.h"
#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/dra_checkpoint.h"
#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/discovery/flags.h"
#include "edgefd/discovery/rules_reload.h"
#include "edgefd/discovery/udev.h"

namespace edgefd::deviceplugin {

/// What the device plugin's flags set.
struct DevicePluginFlags {
  /// --mode: device-plugin, dra or both (edgefd-deviceplugin-dra: dra or both).
  std::string mode = "device-plugin";
  DiscoveryFlags discovery;
  std::optional<std::filesystem::path> inventory_file;  ///< --inventory, instead of discovery
  PluginServerOptions server;                           ///< --kubelet-dir, --socket-prefix
  bool cdi = false;                                     ///< --cdi: name CDI devices in Allocate
  std::filesystem::path cdi_dir{std::string(kDefaultCdiDir)};
  /// --dra-checkpoint: the DRA driver's record of prepared claims, whose devices the device
  /// plugin withdraws. Unset: kDefaultDraCheckpoint (edgefd-deviceplugin-dra:
  /// `<--kubelet-plugins-dir>/edgefd.io/checkpoint.json`).
  std::optional<std::filesystem::path> dra_checkpoint;
  bool list = false;
  std::string output = "text";  ///< --output: how --list (and --print-slices) print
  std::string metrics_address = ":9479";
  std::string log_level = "info";
};

/// Adds --mode, --list, --output, the discovery group with --inventory, the group "Device plugin"
/// (--kubelet-dir, --socket-prefix, --cdi, --cdi-dir, --dra-checkpoint), --metrics-addr and
/// --log-level.
void AddDevicePluginFlags(CLI::App& app, DevicePluginFlags& flags);

/// Where devices come from: the static inventory file, or discovery. Each discovery run's rules
/// status goes to `reload` when given (it must outlive the function).
InventoryFeed::DiscoverFn MakeDiscover(const DevicePluginFlags& flags,
                                       RulesReload* reload = nullptr);

/// What the hardware watcher watches: the udev subsystems the rules need (nothing for a
/// static inventory). A broken rules file is an Error for the user to fix.
Result<WatchOptions> MakeWatchOptions(const DevicePluginFlags& flags);

/// --list: discovers once and prints the resources, their variables and devices on stdout in
/// `format` (text, json, yaml). Returns the exit code.
int ListResources(const InventoryFeed::DiscoverFn& discover, const std::string& format);

}  // namespace edgefd::deviceplugin
