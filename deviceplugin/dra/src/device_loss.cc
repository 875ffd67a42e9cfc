// Saying in a claim's status that a device it holds was unplugged.
#include <spdlog/spdlog.h>

#include <ctime>

#include "edgefd/common/json.h"
#include "edgefd/dra/claims.h"
#include "registry_worker.h"

namespace edgefd::dra {
using deviceplugin::PluginDevice;
using deviceplugin::ResourceSnapshot;

DeviceLossReporter::DeviceLossReporter(deviceplugin::DeviceRegistry& registry,
                                       ClaimPreparer& claims, kube::ApiTransport& api,
                                       ResourceApi version, std::string node,
                                       std::function<bool()> taints)
    : registry_(registry),
      claims_(claims),
      api_(api),
      version_(std::move(version)),
      node_(std::move(node)),
      taints_(std::move(taints)),
      worker_(std::make_unique<RegistryWorker>(
          registry_, TriggeredWorker::Options{},
          [this]() -> Status {
            if (ReportOnce()) return Ok{};
            return Error{"a claim status update failed"};
          },
          nullptr)) {}

DeviceLossReporter::~DeviceLossReporter() { Stop(); }

void DeviceLossReporter::Start() { worker_->Start(); }

void DeviceLossReporter::Stop() { worker_->Stop(); }

bool DeviceLossReporter::ReportOnce() {
  std::lock_guard pass(pass_mu_);
  if (taints_ && taints_()) return true;  // the slice's NoExecute taint speaks for itself
  std::map<std::string, const PluginDevice*> present;
  const auto resources = deviceplugin::AllSnapshots(registry_);
  for (const ResourceSnapshot& r : resources) {
    for (const PluginDevice& d : r.devices) present[deviceplugin::DeviceName(r, d)] = &d;
  }
  bool ok = true;
  std::map<std::string, bool> seen;
  for (const auto& [uid, claim] : claims_.Claims()) {
    for (const PreparedDevice& d : claim.devices) {
      if (d.pool != node_) continue;
      auto it = present.find(d.device);
      bool ready = it != present.end() && it->second->present;
      const std::string key = uid + "/" + d.device;
      seen[key] = ready;
      auto last = reported_.find(key);
      // Only transitions are written; a device that was never reported and is there is fine.
      if (last == reported_.end() ? ready : last->second == ready) continue;
      if (SetCondition(claim, d.device, ready)) {
        reported_[key] = ready;
      } else {
        ok = false;
      }
    }
  }
  // Forget unprepared claims.
  for (auto it = reported_.begin(); it != reported_.end();) {
    it = seen.contains(it->first) ? std::next(it) : reported_.erase(it);
  }
  return ok;
}

bool DeviceLossReporter::SetCondition(const PreparedClaim& claim, const std::string& device,
                                      bool ready) {
  const std::string what = "status of ResourceClaim " + claim.ns + "/" + claim.name;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto got = api_.GetResourceClaim(version_.version(), claim.ns, claim.name);
    if (!got || got->status != 200) {
      spdlog::warn("{}: {}", what, got ? DescribeFailure("GET", *got) : got.error().message);
      return false;
    }
    Json object = ParseJsonOrNull(got->body);
    if (!object.is_object() || StringAt(object, "/metadata/uid") != claim.uid) {
      return true;  // the claim is gone or replaced: nothing to say
    }
    const std::string now = NowRfc3339();
    Json condition = {{"type", "Ready"},
                      {"status", ready ? "True" : "False"},
                      {"reason", ready ? "DevicePresent" : "DeviceUnplugged"},
                      {"message", ready ? "the device is attached to " + node_ + " again"
                                        : "the device was unplugged from " + node_ +
                                              "; the pod keeps running without it"},
                      {"lastTransitionTime", now}};
    if (!object["status"].is_object()) object["status"] = Json::object();
    Json& devices = object["status"]["devices"];
    if (!devices.is_array()) devices = Json::array();
    Json* entry = nullptr;
    for (Json& e : devices) {
      if (StringAt(e, "/driver") == kDriverName && StringAt(e, "/pool") == node_ &&
          StringAt(e, "/device") == device) {
        entry = &e;
      }
    }
    if (entry == nullptr) {
      devices.push_back({{"driver", kDriverName}, {"pool", node_}, {"device", device}});
      entry = &devices.back();
    }
    (*entry)["conditions"] = Json::array({condition});
    auto put =
        api_.UpdateResourceClaimStatus(version_.version(), claim.ns, claim.name, DumpJson(object));
    if (!put) {
      spdlog::warn("{}: {}", what, put.error().message);
      return false;
    }
    if (put->status == 409) continue;  // changed since the GET: read it again
    if (put->status != 200) {
      spdlog::warn("{}", DescribeFailure("update " + what, *put));
      return false;
    }
    spdlog::info("{}: device {} {}", what, device, ready ? "is back" : "was unplugged");
    return true;
  }
  return false;
}

}  // namespace edgefd::dra
