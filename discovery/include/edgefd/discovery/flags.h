#pragma once

// The discovery flags, one meaning in every binary that discovers (edgefd-labeller,
// edgefd-deviceplugin).

#include <chrono>

#include "edgefd/common/cli.h"
#include "edgefd/discovery/discovery.h"

namespace edgefd {

/// What the discovery flags set.
struct DiscoveryFlags {
  DiscoveryOptions discovery;
  /// --rescan: how often the hardware watcher rescans when udev's netlink monitor cannot be
  /// opened; 0: never.
  std::chrono::milliseconds rescan{std::chrono::seconds(30)};
};

/// Adds, in the group "Discovery": --root DIR, --dtb FILE, --node NAME (repeatable),
/// --config FILE (repeatable), --udev / --no-udev, --rescan SECONDS (fractional; 0: never;
/// at most 86400).
void AddDiscoveryFlags(CLI::App& app, DiscoveryFlags& flags);

}  // namespace edgefd
