#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace edgefd {

/// A USB or PCI "vendor:product" match: lower-case 4-digit hex; an empty product matches any.
struct HexId {
  std::string vendor;   ///< "03e7"
  std::string product;  ///< "2485", or "" for "03e7" / "03e7:*"

  bool operator==(const HexId&) const = default;
};

/// One alternative of a rule's `match` list. Every key given must match (AND); a rule
/// matches when any of its alternatives does (OR). Globs are fnmatch(3) patterns.
/// Udev keys and devicetree keys (`compatible`, `dt-node`) are never mixed in one entry.
struct RuleMatch {
  std::vector<std::string> subsystems;            ///< `subsystem`: globs
  std::vector<HexId> usb;                         ///< `usb`: ids of the USB device
  std::vector<HexId> pci;                         ///< `pci`: ids of the PCI function
  std::vector<std::string> pci_classes;           ///< `pci-class`: 2, 4 or 6 hex digits (prefix)
  std::vector<std::string> drivers;               ///< `driver`: globs on the bound driver
  std::vector<std::string> devnodes;              ///< `devnode`: globs on the /dev node
  std::map<std::string, std::string> properties;  ///< `property`: udev property -> glob
  std::vector<std::string> compatible;            ///< `compatible`: devicetree globs
  std::vector<std::string> dt_nodes;              ///< `dt-node`: node base names ("npu")

  bool IsDeviceTree() const { return !compatible.empty() || !dt_nodes.empty(); }
  bool operator==(const RuleMatch&) const = default;
};

/// Where a version comes from (a rule's `versions`); exactly one kind is set.
struct VersionSource {
  std::string module;         ///< `module: NAME`: /sys/module/NAME/version, else srcversion
  bool bound_driver = false;  ///< `bound-driver: true`: the module of the device's driver
  std::string file;           ///< `file: /etc/nv_tegra_release` (read below --root)
  /// `regex:` with `file`: ECMAScript, searched line by line; the capture groups joined with
  /// "." are the version ("R(\d+) .*REVISION: (\d+)\.(\d+)" -> "32.7.1"). Empty: the
  /// file's first line.
  std::string regex;
  bool usb_bcd = false;  ///< `usb-bcd: true`: the USB device's bcdDevice

  bool operator==(const VersionSource&) const = default;
};

/// A rule's version sources, tried in order (the first that yields a version wins). A list
/// left empty takes the default: the driver from the bound driver's module, the firmware
/// from the USB bcdDevice, no runtime.
struct RuleVersions {
  std::vector<VersionSource> driver;
  std::vector<VersionSource> firmware;
  std::vector<VersionSource> runtime;

  bool operator==(const RuleVersions&) const = default;
};

/// What a rule finds: accelerators get `edgefd.io/accel.<name>` labels, cameras are counted
/// together under `edgefd.io/camera`.
enum class RuleKind { kAccelerator, kCamera };

/// A named device class: how to recognise it and which /dev nodes a container needs.
struct Rule {
  std::string name;  ///< label/resource name: [a-z0-9-], at most 50 chars
  RuleKind kind = RuleKind::kAccelerator;
  bool resource = true;               ///< advertised by the device plugin as edgefd.io/<name>
  bool enabled = true;                ///< `enabled: false` switches a built-in rule off
  std::vector<RuleMatch> match;       ///< alternatives (OR)
  std::vector<std::string> devnodes;  ///< globs: /dev nodes of the device and its children
  /// When `devnodes` is given and none exists, the device is unhealthy (driver not loaded).
  bool require_devnodes = true;
  RuleVersions versions;  ///< `versions`: where driver/firmware/runtime versions come from
  std::string origin;     ///< "built-in" or "FILE:LINE", for messages

  bool operator==(const Rule&) const = default;
};

/// The built-in rules as YAML, in the same format `--config` files use.
std::string_view DefaultRulesYaml();

/// Largest rules document accepted (the built-in set is under 4 KiB). yaml-cpp holds up to
/// about 250 bytes per input byte while it parses (an unclosed `[[[[...` is the worst case),
/// so this also bounds the memory a broken or hostile file can take.
inline constexpr size_t kMaxRulesBytes = 128 * 1024;
/// Most values (scalars, rules, match entries) one document may yield. YAML aliases make
/// copies: a 10 KB document of nested aliases expands to millions of values, so they are
/// counted as they are converted and the document is refused past this bound.
inline constexpr size_t kMaxRuleValues = 20000;

/// Parses a rules document. `source` names it in errors ("rules.yaml:12: rule 'x': unknown
/// key 'matchs' — did you mean 'match'?"). Never throws. A document over kMaxRulesBytes, or
/// one that expands to over kMaxRuleValues values, is an error.
Result<std::vector<Rule>> ParseRules(std::string_view yaml, std::string_view source);

/// The built-in rules, then each file in order: a rule with a name seen before replaces it
/// (in place), a new name is appended. Any error in any file fails the whole load; a file
/// larger than kMaxRulesBytes is refused unread.
Result<std::vector<Rule>> LoadRules(const std::vector<std::filesystem::path>& files);

/// One rules document and the name errors give it (its path).
struct RulesSource {
  std::string name;
  std::string text;
};

/// LoadRules over documents already read: the built-in rules, then each source in order.
Result<std::vector<Rule>> MergeRuleSources(const std::vector<RulesSource>& sources);

/// fnmatch(3) without flags; exposed for tests.
bool GlobMatches(std::string_view pattern, std::string_view text);

}  // namespace edgefd
