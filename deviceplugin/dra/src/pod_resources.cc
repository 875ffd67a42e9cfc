#include "edgefd/dra/pod_resources.h"

#include <spdlog/spdlog.h>

#include <map>

#include "edgefd/common/triggered_worker.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::dra {

DevicePluginHoldings::DevicePluginHoldings(PodResourcesClient& client,
                                           deviceplugin::DeviceRegistry& registry,
                                           std::chrono::milliseconds period,
                                           std::function<void()> on_change)
    : client_(client),
      registry_(registry),
      on_change_(std::move(on_change)),
      worker_(std::make_unique<TriggeredWorker>(
          TriggeredWorker::Options{period, period,
                                   std::max(period, std::chrono::milliseconds(30000))},
          [this] { return PollOnce(); },
          [this](const Error& error, std::chrono::milliseconds retry_in) {
            spdlog::warn(
                "{} (devices the device plugin handed out stay as last seen; again in "
                "{} ms)",
                error.message, retry_in.count());
          })) {}

DevicePluginHoldings::~DevicePluginHoldings() { Stop(); }

void DevicePluginHoldings::Start() { worker_->Start(); }
void DevicePluginHoldings::Stop() { worker_->Stop(); }
void DevicePluginHoldings::Refresh() { worker_->Trigger(); }

std::set<std::string> DevicePluginHoldings::Names() const {
  std::lock_guard lock(mu_);
  return names_;
}

Status DevicePluginHoldings::PollOnce() {
  auto assigned = client_.List();
  if (!assigned) return assigned.error();
  std::map<std::pair<std::string, std::string>, std::string> by_id;  // (resource, id) → name
  for (const auto& r : deviceplugin::AllSnapshots(registry_)) {
    for (const auto& d : r.devices) by_id[{r.resource, d.id}] = deviceplugin::DeviceName(r, d);
  }
  std::set<std::string> names;
  for (const AssignedDevice& a : *assigned) {
    if (auto it = by_id.find({a.resource, a.id}); it != by_id.end()) names.insert(it->second);
  }
  bool changed;
  {
    std::lock_guard lock(mu_);
    changed = names != names_;
    names_ = std::move(names);
  }
  if (changed && on_change_) on_change_();
  return Ok{};
}

}  // namespace edgefd::dra
