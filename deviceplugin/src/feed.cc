#include "edgefd/deviceplugin/feed.h"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "edgefd/common/files.h"

namespace edgefd::deviceplugin {

InventoryFeed::InventoryFeed(InventoryRegistry& registry, DiscoverFn discover, ChangeSource& source,
                             Metrics* metrics)
    : registry_(registry), discover_(std::move(discover)), source_(source), metrics_(metrics) {}

Status InventoryFeed::Start() {
  {
    std::lock_guard lock(mu_);
    Result<Inventory> inventory = discover_();
    if (metrics_ != nullptr) metrics_->CountInventoryRefresh(inventory.ok());
    if (!inventory) return inventory.error();
    registry_.Update(*inventory);
  }
  if (Status s = source_.Start([this] { Refresh(); }); !s) return s;
  started_ = true;
  return Ok{};
}

void InventoryFeed::Stop() {
  if (!started_) return;
  started_ = false;
  source_.Stop();
}

bool InventoryFeed::Refresh() {
  std::lock_guard lock(mu_);
  Result<Inventory> inventory = discover_();
  if (metrics_ != nullptr) metrics_->CountInventoryRefresh(inventory.ok());
  if (!inventory) {
    spdlog::warn("rediscovery failed, keeping the last inventory: {}", inventory.error().message);
    return false;
  }
  registry_.Update(*inventory);
  for (const std::string& name : registry_.ResourceNames()) {
    if (metrics_ == nullptr) break;
    auto snapshot = registry_.Snapshot(name);
    if (!snapshot) continue;
    int healthy = static_cast<int>(
        std::count_if(snapshot->devices.begin(), snapshot->devices.end(),
                      [](const PluginDevice& d) { return d.healthy && d.present; }));
    metrics_->SetDevices(name, healthy, static_cast<int>(snapshot->devices.size()) - healthy);
  }
  return true;
}

Result<Inventory> LoadInventoryFile(const std::filesystem::path& path) {
  const std::string file = path.string();
  // A board's inventory is a few KiB; the bound keeps yaml-cpp's parse (up to ~250 bytes per
  // input byte) small whatever file the flag names.
  constexpr size_t kMaxInventoryBytes = 256 * 1024;
  auto text = ReadFileAtMost(path, kMaxInventoryBytes, "inventory file");
  if (!text) return text.error();
  try {
    YAML::Node root = YAML::Load(*text);
    Inventory inv;
    auto where = [&](const YAML::Node& n) {
      return file + ":" + std::to_string(n.Mark().line + 1) + ": ";
    };
    if (root["cpu"]) {
      const YAML::Node cpu = root["cpu"];
      for (const YAML::Node& c : cpu["classes"]) {
        CpuClass cls;
        cls.name = c["name"].as<std::string>();
        if (cls.name != "big" && cls.name != "mid" && cls.name != "little" && cls.name != "all") {
          return Error{where(c) + "cpu class '" + cls.name + "' is not big, mid, little or all"};
        }
        if (c["model"]) cls.model = c["model"].as<std::string>();
        if (c["max_mhz"]) cls.max_mhz = c["max_mhz"].as<int>();
        if (c["capacity"]) cls.capacity = c["capacity"].as<int>();
        for (const YAML::Node& id : c["cpus"]) cls.cpus.push_back(id.as<int>());
        std::sort(cls.cpus.begin(), cls.cpus.end());
        for (int id : cls.cpus) {
          CpuCore core;
          core.id = id;
          inv.cpu.cores.push_back(core);
        }
        inv.cpu.classes.push_back(std::move(cls));
      }
      for (const YAML::Node& c : cpu["cores"]) {
        int id = c["id"].as<int>();
        auto it = std::find_if(inv.cpu.cores.begin(), inv.cpu.cores.end(),
                               [&](const CpuCore& core) { return core.id == id; });
        if (it == inv.cpu.cores.end()) {
          return Error{where(c) + "core " + std::to_string(id) + " is in no cpu class"};
        }
        if (c["cluster"]) it->cluster = c["cluster"].as<int>();
        if (c["numa_node"]) it->numa_node = c["numa_node"].as<int>();
      }
      std::sort(inv.cpu.cores.begin(), inv.cpu.cores.end(),
                [](const CpuCore& a, const CpuCore& b) { return a.id < b.id; });
    }
    for (const YAML::Node& d : root["devices"]) {
      Device dev;
      dev.rule = d["rule"].as<std::string>();
      dev.id = d["id"].as<std::string>();
      if (dev.rule.empty() || dev.id.empty()) return Error{where(d) + "device needs rule and id"};
      for (const YAML::Node& n : d["devnodes"]) dev.devnodes.push_back(n.as<std::string>());
      for (auto [key, field] : {std::pair{"vendor_id", &dev.vendor_id},
                                {"product_id", &dev.product_id},
                                {"serial", &dev.serial},
                                {"driver", &dev.driver},
                                {"driver_version", &dev.driver_version},
                                {"firmware_version", &dev.firmware_version},
                                {"runtime_version", &dev.runtime_version}}) {
        if (d[key]) *field = d[key].as<std::string>();
      }
      if (d["numa_node"]) dev.numa_node = d["numa_node"].as<int>();
      if (d["healthy"]) dev.healthy = d["healthy"].as<bool>();
      dev.resource = true;
      inv.devices.push_back(std::move(dev));
    }
    return inv;
  } catch (const YAML::Exception& e) {
    return Error{file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
}

}  // namespace edgefd::deviceplugin
