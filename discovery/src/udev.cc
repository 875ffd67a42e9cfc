#include "edgefd/discovery/udev.h"

#include <dirent.h>
#include <limits.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/versions.h"
#include "udev_handles.h"

namespace edgefd {
namespace {

std::string Str(const char* s) { return s == nullptr ? std::string() : std::string(s); }

// "0x10DE\n" -> "10de"
std::string HexAttr(udev_device* dev, const char* attr) {
  std::string v = Str(udev_device_get_sysattr_value(dev, attr));
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.pop_back();
  if (v.rfind("0x", 0) == 0 || v.rfind("0X", 0) == 0) v = v.substr(2);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v;
}

// A device with no hardware: a misc or tty class device that is no USB, PCI or platform
// device's child, and so has no driver and no anchor but itself.
bool IsVirtual(const std::string& syspath) {
  return syspath.rfind("/sys/devices/virtual/", 0) == 0;
}

// Finds the physical device `dev` belongs to and copies its identity into `rec`.
void FillAnchor(udev_device* dev, UdevRecord& rec) {
  // Skipping the walk for a virtual device spares libudev probing each parent directory.
  udev_device* start = IsVirtual(rec.syspath) ? nullptr : dev;
  for (udev_device* d = start; d != nullptr; d = udev_device_get_parent(d)) {
    std::string subsystem = Str(udev_device_get_subsystem(d));
    const char* of_path = udev_device_get_property_value(d, "OF_FULLNAME");
    bool usb = subsystem == "usb" && Str(udev_device_get_devtype(d)) == "usb_device";
    bool pci = subsystem == "pci";
    if (!usb && !pci && of_path == nullptr) continue;
    rec.anchor_syspath = Str(udev_device_get_syspath(d));
    rec.anchor_subsystem = subsystem;
    rec.anchor_driver = Str(udev_device_get_driver(d));
    if (usb) {
      rec.anchor_id = Str(udev_device_get_sysname(d));  // the port path: "1-2", "3-1.4"
      rec.usb_vendor = HexAttr(d, "idVendor");
      rec.usb_product = HexAttr(d, "idProduct");
      rec.usb_serial = Str(udev_device_get_sysattr_value(d, "serial"));
      rec.usb_bcd = HexAttr(d, "bcdDevice");
      while (!rec.usb_serial.empty() &&
             std::isspace(static_cast<unsigned char>(rec.usb_serial.back()))) {
        rec.usb_serial.pop_back();
      }
    } else if (pci) {
      rec.anchor_id = Str(udev_device_get_sysname(d));  // "0000:01:00.0"
      rec.pci_vendor = HexAttr(d, "vendor");
      rec.pci_product = HexAttr(d, "device");
      rec.pci_class = HexAttr(d, "class");
      std::string numa = Str(udev_device_get_sysattr_value(d, "numa_node"));
      if (!numa.empty()) rec.numa_node = std::atoi(numa.c_str());
    } else {
      rec.anchor_id = of_path;
    }
    return;
  }
  rec.anchor_id = rec.syspath;
  rec.anchor_syspath = rec.syspath;
  rec.anchor_subsystem = rec.subsystem;
  rec.anchor_driver = rec.driver;
}

bool AnyGlob(const std::vector<std::string>& globs, const std::string& text) {
  return std::any_of(globs.begin(), globs.end(),
                     [&](const std::string& g) { return GlobMatches(g, text); });
}

bool IdMatches(const std::vector<HexId>& ids, const std::string& vendor,
               const std::string& product) {
  return std::any_of(ids.begin(), ids.end(), [&](const HexId& id) {
    return id.vendor == vendor && (id.product.empty() || id.product == product);
  });
}

// The first key of a match entry a device or node fails ("" when it passes them all), and how
// many keys it passes. Matches() needs only the first failure; --explain asks for `all` keys,
// to tell the nearest miss.
struct KeyCheck {
  std::string_view failed;
  int passed = 0;
  bool all = false;

  // Records the outcome of one key; false when the check can stop here.
  bool Key(bool given, bool ok, std::string_view key) {
    if (!given) return true;
    if (ok) {
      ++passed;
      return true;
    }
    if (failed.empty()) failed = key;
    return all;
  }
};

// `check_properties` false: the udev properties are not known yet and taken as matching.
KeyCheck CheckKeys(const RuleMatch& m, const UdevRecord& r, bool check_properties = true,
                   bool all = false) {
  KeyCheck k;
  k.all = all;
  if (!k.Key(!m.subsystems.empty(), AnyGlob(m.subsystems, r.subsystem), "subsystem")) return k;
  if (!k.Key(!m.usb.empty(),
             r.anchor_subsystem == "usb" && IdMatches(m.usb, r.usb_vendor, r.usb_product), "usb")) {
    return k;
  }
  if (!k.Key(!m.pci.empty(),
             r.anchor_subsystem == "pci" && IdMatches(m.pci, r.pci_vendor, r.pci_product), "pci")) {
    return k;
  }
  bool class_ok = !r.pci_class.empty() &&
                  std::any_of(m.pci_classes.begin(), m.pci_classes.end(),
                              [&](const std::string& c) { return r.pci_class.rfind(c, 0) == 0; });
  if (!k.Key(!m.pci_classes.empty(), class_ok, "pci-class")) return k;
  if (!k.Key(!m.drivers.empty(), !r.driver.empty() && AnyGlob(m.drivers, r.driver), "driver")) {
    return k;
  }
  if (!k.Key(!m.devnodes.empty(), !r.devnode.empty() && AnyGlob(m.devnodes, r.devnode),
             "devnode")) {
    return k;
  }
  for (const auto& [name, glob] : m.properties) {
    if (!check_properties) break;
    auto it = r.properties.find(name);
    if (!k.Key(true, it != r.properties.end() && GlobMatches(glob, it->second), "property")) {
      return k;
    }
  }
  return k;
}

bool Matches(const RuleMatch& m, const UdevRecord& r, bool check_properties = true) {
  return !m.IsDeviceTree() && CheckKeys(m, r, check_properties).failed.empty();
}

KeyCheck CheckKeys(const RuleMatch& m, const DtNodeInfo& node, bool all = false) {
  KeyCheck k;
  k.all = all;
  bool name_ok = std::find(m.dt_nodes.begin(), m.dt_nodes.end(), node.name) != m.dt_nodes.end();
  if (!k.Key(!m.dt_nodes.empty(), name_ok, "dt-node")) return k;
  bool compatible_ok = std::any_of(node.compatible.begin(), node.compatible.end(),
                                   [&](const std::string& c) { return AnyGlob(m.compatible, c); });
  k.Key(!m.compatible.empty(), compatible_ok, "compatible");
  return k;
}

bool Matches(const RuleMatch& m, const DtNodeInfo& node) {
  return m.IsDeviceTree() && CheckKeys(m, node).failed.empty();
}

void AddDevnode(Device& d, const std::string& node) {
  if (!node.empty() && std::find(d.devnodes.begin(), d.devnodes.end(), node) == d.devnodes.end()) {
    d.devnodes.push_back(node);
  }
}

// The entries of a sysfs directory, without "." and ".."; none when it does not exist.
std::vector<std::string> DirEntries(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return names;
  while (const dirent* e = readdir(d)) {
    std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  closedir(d);
  return names;
}

// The device directory a /sys/bus/X/devices or /sys/class/X entry links to. Resolved here
// from the link text, so that libudev does not have to walk the link path component by
// component again; anything but a relative link is left for libudev to resolve.
std::string DeviceDir(const std::string& dir, const std::string& name) {
  std::string link = dir + "/" + name;
  char target[PATH_MAX];
  ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  if (n <= 0 || target[0] == '/') return link;
  return (std::filesystem::path(dir) / std::string_view(target, static_cast<size_t>(n)))
      .lexically_normal()
      .string();
}

// The subsystem directories of `top` (/sys/bus or /sys/class) that `subsystems` name: a
// literal name as it is, a glob ("hailo*", as rules may write) expanded as libudev's
// subsystem match does; all of them when `subsystems` is empty.
std::vector<std::string> SubsystemNames(const std::string& top,
                                        const std::vector<std::string>& subsystems) {
  if (subsystems.empty()) return DirEntries(top);
  std::vector<std::string> names;
  std::optional<std::vector<std::string>> all;  // read only when a glob needs it
  for (const std::string& s : subsystems) {
    if (s.find_first_of("*?[") == std::string::npos) {
      names.push_back(s);
      continue;
    }
    if (!all) all = DirEntries(top);
    for (const std::string& entry : *all) {
      if (GlobMatches(s, entry)) names.push_back(entry);
    }
  }
  return names;
}

// A device directory and the subsystem it was listed under.
struct ListedDevice {
  std::string syspath;
  std::string subsystem;
  bool operator<(const ListedDevice& o) const { return syspath < o.syspath; }
};

// The sysfs directories of the devices of `subsystems` (all subsystems when empty), sorted
// and without duplicates: what udev_enumerate_scan_devices() lists for subsystem matches
// (/sys/bus/X/devices/ and /sys/class/X/), read directly. libudev's enumerator builds a
// device object for every entry and for each of its parents, resolving every path one
// component at a time, only to hand back the paths, and EnumerateUdev() then builds its own
// objects: on this project's x86 test VM that was half of the enumeration's system calls.
// (The enumerator also adds a listed device's parents of a wanted subsystem, for root buses
// that no /sys/bus or /sys/class entry links; every usb and pci device and every device of
// a /dev class is linked there.)
std::vector<ListedDevice> ListSubsystemDevices(const std::vector<std::string>& subsystems) {
  std::set<ListedDevice> devices;
  for (const char* kind : {"bus", "class"}) {
    std::string top = std::string("/sys/") + kind;
    for (const std::string& s : SubsystemNames(top, subsystems)) {
      std::string dir = top + "/" + s + (std::string_view(kind) == "bus" ? "/devices" : "");
      for (const std::string& entry : DirEntries(dir)) devices.insert({DeviceDir(dir, entry), s});
    }
  }
  return {devices.begin(), devices.end()};
}

// The /dev node from a device's uevent file (DEVNAME=...), as libudev forms it; nullopt
// when the file cannot be read.
std::optional<std::string> UeventDevnode(const std::string& syspath) {
  std::ifstream in(syspath + "/uevent");
  if (!in) return std::nullopt;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("DEVNAME=", 0) != 0) continue;
    std::string name = line.substr(8);
    return name.empty() || name[0] == '/' ? name : "/dev/" + name;
  }
  return std::string();
}

// Whether a virtual device (one with no driver and no USB, PCI or devicetree ancestor) can
// matter to `rules`: some udev alternative may match it (its properties, unread, taken as
// matching) or some rule names its /dev node (a devicetree device's nodes can be virtual,
// as Jetson's /dev/nvmap). MatchDevices() drops every other one.
bool VirtualDeviceMatters(const std::vector<Rule>& rules, const UdevRecord& r) {
  return std::any_of(rules.begin(), rules.end(), [&](const Rule& rule) {
    if (!rule.enabled) return false;
    if (!r.devnode.empty() && AnyGlob(rule.devnodes, r.devnode)) return true;
    return std::any_of(rule.match.begin(), rule.match.end(), [&](const RuleMatch& m) {
      return Matches(m, r, /*check_properties=*/false);
    });
  });
}

}  // namespace

std::vector<std::string> UdevSubsystems(const std::vector<Rule>& rules) {
  std::vector<std::string> out = {"usb", "pci",   "video4linux", "media",  "misc",
                                  "drm", "accel", "apex",        "gasket", "hailo_chardev"};
  for (const Rule& rule : rules) {
    for (const RuleMatch& m : rule.match) {
      for (const std::string& s : m.subsystems) {
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
      }
    }
  }
  return out;
}

Result<std::vector<UdevRecord>> EnumerateUdev(const std::vector<std::string>& subsystems,
                                              const std::vector<Rule>* rules) {
  UdevPtr udev(udev_new());
  if (!udev) return Error{std::string("libudev: udev_new failed: ") + std::strerror(errno)};
  std::vector<UdevRecord> records;
  for (const ListedDevice& listed : ListSubsystemDevices(subsystems)) {
    if (rules != nullptr && IsVirtual(listed.syspath)) {
      // Most virtual devices (loop-control, tun, fuse, ...) matter to no rule; telling
      // that from their uevent file is far cheaper than a libudev device.
      std::optional<std::string> devnode = UeventDevnode(listed.syspath);
      UdevRecord partial;
      partial.syspath = partial.anchor_id = partial.anchor_syspath = listed.syspath;
      partial.subsystem = partial.anchor_subsystem = listed.subsystem;
      partial.devnode = devnode.value_or("");
      if (devnode && !VirtualDeviceMatters(*rules, partial)) continue;
    }
    UdevDevicePtr dev(udev_device_new_from_syspath(udev.get(), listed.syspath.c_str()));
    if (!dev) continue;  // gone since the listing: its remove event will follow
    UdevRecord rec;
    rec.syspath = Str(udev_device_get_syspath(dev.get()));
    rec.subsystem = Str(udev_device_get_subsystem(dev.get()));
    rec.devtype = Str(udev_device_get_devtype(dev.get()));
    rec.devnode = Str(udev_device_get_devnode(dev.get()));
    rec.driver = Str(udev_device_get_driver(dev.get()));
    udev_list_entry* prop = nullptr;
    udev_list_entry_foreach(prop, udev_device_get_properties_list_entry(dev.get())) {
      rec.properties[Str(udev_list_entry_get_name(prop))] = Str(udev_list_entry_get_value(prop));
    }
    FillAnchor(dev.get(), rec);
    records.push_back(std::move(rec));
  }
  return records;
}

std::vector<Device> MatchDevices(const std::vector<Rule>& rules,
                                 const std::vector<UdevRecord>& records,
                                 const std::vector<DtNodeInfo>& dt_nodes) {
  std::vector<Device> out;
  std::set<std::string> dt_paths;
  for (const DtNodeInfo& node : dt_nodes) dt_paths.insert(node.path);
  for (const Rule& rule : rules) {
    if (!rule.enabled) continue;
    std::map<std::string, Device> found;  // by stable ID
    std::set<std::string> from_devicetree;
    auto device_for = [&](const std::string& id) -> Device& {
      Device& d = found[id];
      d.rule = rule.name;
      d.camera = rule.kind == RuleKind::kCamera;
      d.resource = rule.resource;
      d.id = id;
      return d;
    };
    for (const UdevRecord& r : records) {
      if (!std::any_of(rule.match.begin(), rule.match.end(),
                       [&](const RuleMatch& m) { return Matches(m, r); })) {
        continue;
      }
      Device& d = device_for(r.anchor_id);
      d.subsystem = r.anchor_subsystem;
      d.syspath = r.anchor_syspath;
      d.vendor_id = r.anchor_subsystem == "usb" ? r.usb_vendor : r.pci_vendor;
      d.product_id = r.anchor_subsystem == "usb" ? r.usb_product : r.pci_product;
      d.driver = r.anchor_driver;
      d.serial = r.anchor_subsystem == "usb" ? r.usb_serial : "";
      d.usb_bcd = r.anchor_subsystem == "usb" ? r.usb_bcd : "";
      d.numa_node = r.numa_node;
      if (rule.devnodes.empty()) AddDevnode(d, r.devnode);
    }
    for (const DtNodeInfo& node : dt_nodes) {
      if (!std::any_of(rule.match.begin(), rule.match.end(),
                       [&](const RuleMatch& m) { return Matches(m, node); })) {
        continue;
      }
      Device& d = device_for(node.path);
      if (d.subsystem.empty()) {
        d.subsystem = "devicetree";
        d.syspath = node.path;
      }
      from_devicetree.insert(node.path);
    }
    for (auto& [id, d] : found) {
      if (!rule.devnodes.empty()) {
        // The nodes of this physical device (a PCI function's /dev/apex_0, a camera's
        // capture and metadata nodes) ...
        for (const UdevRecord& r : records) {
          if (r.anchor_id == id && !r.devnode.empty() && AnyGlob(rule.devnodes, r.devnode)) {
            AddDevnode(d, r.devnode);
          }
        }
        // ... and for a devicetree device whose nodes hang elsewhere (Jetson's nvhost-* sit
        // under host1x), any node the rule names that belongs to no USB/PCI device and to no
        // other gpu/npu node (an RK3588's Mali render node is not its NPU's).
        if (d.devnodes.empty() && from_devicetree.count(id) != 0) {
          for (const UdevRecord& r : records) {
            bool owned_elsewhere = r.anchor_subsystem == "usb" || r.anchor_subsystem == "pci" ||
                                   dt_paths.count(r.anchor_id) != 0;
            if (!owned_elsewhere && !r.devnode.empty() && AnyGlob(rule.devnodes, r.devnode)) {
              AddDevnode(d, r.devnode);
            }
          }
        }
      }
      std::sort(d.devnodes.begin(), d.devnodes.end());
      if (from_devicetree.count(id) != 0) {
        // A devicetree node is there by construction (also in --dtb mode, where this
        // machine's /dev says nothing about the board).
        d.healthy = true;
      } else {
        bool driver_ok = d.subsystem != "pci" || !d.driver.empty();
        bool nodes_ok = rule.devnodes.empty() || !rule.require_devnodes || !d.devnodes.empty();
        d.healthy = driver_ok && nodes_ok;
      }
      out.push_back(std::move(d));
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Device& a, const Device& b) {
    return std::tie(a.rule, a.id) < std::tie(b.rule, b.id);
  });
  return out;
}

namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
  return out.empty() ? "none" : out;
}

std::string Ids(const std::vector<HexId>& ids) {
  std::vector<std::string> out;
  for (const HexId& id : ids)
    out.push_back(id.vendor + ":" + (id.product.empty() ? "*" : id.product));
  return Join(out);
}

// What the rule wants under `key`, and what the device has there.
std::string Wanted(const RuleMatch& m, std::string_view key) {
  if (key == "subsystem") return Join(m.subsystems);
  if (key == "usb") return Ids(m.usb);
  if (key == "pci") return Ids(m.pci);
  if (key == "pci-class") return Join(m.pci_classes);
  if (key == "driver") return Join(m.drivers);
  if (key == "devnode") return Join(m.devnodes);
  if (key == "dt-node") return Join(m.dt_nodes);
  if (key == "compatible") return Join(m.compatible);
  std::vector<std::string> props;
  for (const auto& [name, glob] : m.properties) props.push_back(name + "=" + glob);
  return Join(props);
}

std::string Has(const RuleMatch& m, const UdevRecord& r, std::string_view key) {
  auto or_none = [](const std::string& s) { return s.empty() ? std::string("none") : s; };
  if (key == "subsystem") return r.subsystem;
  if (key == "usb") {
    return r.anchor_subsystem == "usb" ? r.usb_vendor + ":" + r.usb_product : "no USB device";
  }
  if (key == "pci") {
    return r.anchor_subsystem == "pci" ? r.pci_vendor + ":" + r.pci_product : "no PCI function";
  }
  if (key == "pci-class") return or_none(r.pci_class);
  if (key == "driver") return or_none(r.driver);
  if (key == "devnode") return or_none(r.devnode);
  std::vector<std::string> props;
  for (const auto& [name, glob] : m.properties) {
    auto it = r.properties.find(name);
    props.push_back(name + "=" + (it == r.properties.end() ? "(unset)" : it->second));
  }
  return Join(props);
}

std::string Has(const DtNodeInfo& node, std::string_view key) {
  return key == "dt-node" ? node.name : Join(node.compatible);
}

// One alternative that found nothing: the candidate that passed the most of its keys, and the
// key it failed.
std::string NearestMiss(const RuleMatch& m, const std::vector<UdevRecord>& records,
                        const std::vector<DtNodeInfo>& dt_nodes) {
  std::string best;
  int best_passed = -1;
  if (m.IsDeviceTree()) {
    if (dt_nodes.empty()) return "no devicetree node was scanned";
    for (const DtNodeInfo& node : dt_nodes) {
      KeyCheck k = CheckKeys(m, node, /*all=*/true);
      if (k.passed <= best_passed) continue;
      best_passed = k.passed;
      best = "nearest " + node.path + ": " + std::string(k.failed) + " is " + Has(node, k.failed) +
             ", wants " + Wanted(m, k.failed);
    }
    return best;
  }
  if (records.empty()) return "no udev device was enumerated (see --udev)";
  for (const UdevRecord& r : records) {
    KeyCheck k = CheckKeys(m, r, /*check_properties=*/true, /*all=*/true);
    if (k.passed <= best_passed) continue;
    best_passed = k.passed;
    best = "nearest " + r.syspath + ": " + std::string(k.failed) + " is " + Has(m, r, k.failed) +
           ", wants " + Wanted(m, k.failed);
  }
  return best;
}

}  // namespace

std::string ExplainMatches(const std::vector<Rule>& rules, const std::vector<UdevRecord>& records,
                           const std::vector<DtNodeInfo>& dt_nodes) {
  std::string out;
  for (const Rule& rule : rules) {
    if (!rule.enabled) continue;
    out += "rule " + rule.name + " (" + rule.origin + ")\n";
    for (size_t i = 0; i < rule.match.size(); ++i) {
      const RuleMatch& m = rule.match[i];
      std::set<std::string> found;  // by stable ID, as MatchDevices merges them
      for (const UdevRecord& r : records) {
        if (Matches(m, r)) found.insert(r.anchor_id);
      }
      for (const DtNodeInfo& node : dt_nodes) {
        if (Matches(m, node)) found.insert(node.path);
      }
      std::string head = "  match[" + std::to_string(i) + "]: ";
      if (found.empty()) {
        out += head + "no device; " + NearestMiss(m, records, dt_nodes) + "\n";
      } else {
        for (const std::string& id : found) out += head + "matched " + id + "\n";
      }
    }
  }
  return out;
}

Result<std::string> ExplainDiscovery(const DiscoveryOptions& options, const Inventory& inventory) {
  auto rules = LoadRules(options.rule_files);
  if (!rules) return rules.error();
  std::vector<UdevRecord> records;
  if (UsesUdev(options)) {
    auto enumerated = EnumerateUdev(UdevSubsystems(*rules));
    if (!enumerated) return enumerated.error();
    records = std::move(*enumerated);
  }
  return ExplainMatches(*rules, records, inventory.dt_nodes);
}

bool UsesUdev(const DiscoveryOptions& options) {
  return options.udev.value_or(options.root == "/" && !options.dtb);
}

std::vector<std::string> UnscannedDtNodes(const std::vector<Rule>& rules,
                                          const std::vector<std::string>& extra_node_names) {
  std::vector<std::string> scanned = DefaultDtNodeNames();
  scanned.insert(scanned.end(), extra_node_names.begin(), extra_node_names.end());
  std::vector<std::string> out;
  for (const Rule& rule : rules) {
    if (!rule.enabled) continue;
    std::set<std::string> said;
    for (const RuleMatch& m : rule.match) {
      for (const std::string& name : m.dt_nodes) {
        if (std::find(scanned.begin(), scanned.end(), name) != scanned.end()) continue;
        if (!said.insert(name).second) continue;
        std::string list;
        for (const std::string& n : scanned) list += (list.empty() ? "" : ", ") + n;
        out.push_back(rule.origin + ": rule '" + rule.name + "': dt-node '" + name +
                      "' is not scanned (only nodes named " + list +
                      " are), so this alternative matches nothing; add --node " + name);
      }
    }
  }
  return out;
}

Status DiscoverUdevDevices(const DiscoveryOptions& options, DiscoveryReport& report) {
  auto rules = LoadRules(options.rule_files);
  if (!rules) return rules.error();
  DiscoverUdevDevices(options, *rules, report);
  return Ok{};
}

void DiscoverUdevDevices(const DiscoveryOptions& options, const std::vector<Rule>& rules,
                         DiscoveryReport& report) {
  for (std::string& w : UnscannedDtNodes(rules, options.extra_node_names)) {
    report.warnings.push_back(std::move(w));
  }
  std::vector<UdevRecord> records;
  // Like the CPU source, a --dtb (some other board) never mixes in this host's devices.
  if (UsesUdev(options)) {
    auto enumerated = EnumerateUdev(UdevSubsystems(rules), &rules);
    if (enumerated) {
      records = std::move(*enumerated);
    } else {
      report.warnings.push_back(enumerated.error().message + "; accelerators and cameras skipped");
    }
  }
  report.inventory.devices = MatchDevices(rules, records, report.inventory.dt_nodes);
  // A --dtb describes another board: this host's modules and files say nothing about it.
  if (!options.dtb) {
    ReadDeviceVersions(rules, options.root, report.inventory.devices, &report.warnings);
    report.inventory.system = ReadSystemInfo(options.root, UsesUdev(options), &report.warnings);
  }
}

}  // namespace edgefd
