#include "edgefd/dra/claims.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/service.h"
#include "worker.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
using deviceplugin::PluginDevice;
using deviceplugin::ResourceSnapshot;

namespace {

std::string Named(const ClaimRef& ref) { return ref.ns + "/" + ref.name; }

// Where each device of the registry is, by its DRA name.
struct Located {
  const ResourceSnapshot* resource;
  const PluginDevice* device;
};

}  // namespace

ClaimPreparer::ClaimPreparer(deviceplugin::DeviceRegistry& registry, kube::ApiTransport& api,
                             ResourceApi version, deviceplugin::CdiSpecDir& cdi,
                             Checkpoint checkpoint, std::string node)
    : registry_(registry),
      api_(api),
      version_(std::move(version)),
      cdi_(cdi),
      checkpoint_(std::move(checkpoint)),
      node_(std::move(node)) {}

Status ClaimPreparer::Start() {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::create_directories(checkpoint_.path().parent_path(), ec);
  auto loaded = checkpoint_.Load();
  if (!loaded) {
    fs::path aside = checkpoint_.path().string() + ".corrupt";
    spdlog::error("{}; moved to {}, starting with no prepared claims", loaded.error().message,
                  aside.string());
    fs::rename(checkpoint_.path(), aside, ec);
    prepared_.clear();
  } else {
    prepared_ = std::move(*loaded);
  }
  // A prepare that stopped while it waited for the kubelet's answer never finished: the
  // kubelet asks again, and then it is checked again.
  std::erase_if(prepared_, [](const auto& entry) {
    if (!entry.second.pending) return false;
    spdlog::info("dropping claim {}: its prepare did not finish", entry.first);
    return true;
  });
  // Writing the checkpoint now proves the directory is writable before the kubelet calls.
  if (Status s = checkpoint_.Save(prepared_); !s) return s;
  for (const auto& [uid, claim] : prepared_) {
    if (Status s = cdi_.WriteClaim(uid, claim.env); !s) return s;
  }
  for (const std::string& uid : cdi_.ClaimSpecs()) {
    if (prepared_.contains(uid)) continue;
    spdlog::info("removing the CDI spec of claim {}, which no record says is prepared", uid);
    if (Status s = cdi_.RemoveClaim(uid); !s) spdlog::warn("{}", s.error().message);
  }
  if (!prepared_.empty())
    spdlog::info("{} prepared claim(s) from {}", prepared_.size(), checkpoint_.path().string());
  return Ok{};
}

void ClaimPreparer::SetOnChange(std::function<void()> on_change) {
  std::lock_guard lock(mu_);
  on_change_ = std::move(on_change);
}

void ClaimPreparer::Changed() {
  std::function<void()> cb;
  {
    std::lock_guard lock(mu_);
    cb = on_change_;
  }
  if (cb) cb();
}

std::set<std::string> ClaimPreparer::HeldDevices() const {
  std::lock_guard lock(mu_);
  std::set<std::string> held;
  for (const auto& [uid, claim] : prepared_) {
    for (const PreparedDevice& d : claim.devices) {
      if (d.pool == node_) held.insert(d.device);
    }
  }
  return held;
}

void ClaimPreparer::SetAssignments(AssignmentSource source) {
  std::lock_guard lock(mu_);
  assignments_ = std::move(source);
}

void ClaimPreparer::SetOnConflict(std::function<void()> on_conflict) {
  std::lock_guard lock(mu_);
  on_conflict_ = std::move(on_conflict);
}

ClaimStats ClaimPreparer::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string ClaimPreparer::CheckAssignments(
    const std::string& what, const PrepareResult& result,
    const std::vector<std::pair<std::string, std::string>>& plugin_ids) {
  AssignmentSource source;
  {
    std::lock_guard lock(mu_);
    source = assignments_;
  }
  if (!source) return "";
  auto assigned = source();
  if (!assigned) {
    std::lock_guard lock(mu_);
    ++stats_.assignments_unknown;
    return what + ": cannot tell whether a container holds its devices through the device " +
           "plugin, so it is not prepared (refusing rather than guessing; the kubelet retries): " +
           assigned.error().message;
  }
  for (size_t i = 0; i < plugin_ids.size(); ++i) {
    const auto& [resource, id] = plugin_ids[i];
    for (const AssignedDevice& a : *assigned) {
      if (a.resource != resource || a.id != id) continue;
      std::function<void()> on_conflict;
      {
        std::lock_guard lock(mu_);
        ++stats_.conflicts;
        on_conflict = on_conflict_;
      }
      if (on_conflict) on_conflict();
      return what + ": device " + result.devices[i].device + " (" + resource + " " + id +
             ") is held by container " + a.container + " of pod " + a.ns + "/" + a.pod +
             " through the device plugin; a device goes to one container at a time";
    }
  }
  return "";
}

PreparedClaims ClaimPreparer::Claims() const {
  std::lock_guard lock(mu_);
  return prepared_;
}

PrepareResult ClaimPreparer::Build(const ClaimRef& ref, const ClaimObject& claim,
                                   std::vector<std::string>& env,
                                   std::vector<std::pair<std::string, std::string>>& plugin_ids) {
  const std::string what = "ResourceClaim " + Named(ref);
  if (claim.uid != ref.uid) {
    return {{},
            what + " has UID " + claim.uid + " but the kubelet asked for " + ref.uid +
                " (was it deleted and created again?)"};
  }
  if (!claim.allocated) return {{}, what + " is not allocated"};
  if (std::find(claim.config_drivers.begin(), claim.config_drivers.end(), kDriverName) !=
      claim.config_drivers.end()) {
    return {{}, what + ": edgefd.io takes no opaque device configuration"};
  }
  const std::vector<ResourceSnapshot> resources = deviceplugin::AllSnapshots(registry_);
  std::map<std::string, Located> by_name;
  for (const ResourceSnapshot& r : resources) {
    for (const PluginDevice& d : r.devices)
      by_name.emplace(deviceplugin::DeviceName(r, d), Located{&r, &d});
  }
  PrepareResult out;
  std::map<const ResourceSnapshot*, std::vector<std::string>> ids;  // per resource, in order
  for (const AllocationResult& result : claim.results) {
    if (result.driver != kDriverName) continue;  // another driver's device in a mixed claim
    if (result.pool != node_) {
      return {{},
              what + ": device " + result.device + " is allocated from pool " + result.pool +
                  ", but this is node " + node_};
    }
    auto it = by_name.find(result.device);
    if (it == by_name.end()) {
      return {{}, what + ": device " + result.device + " is not a device of edgefd.io on " + node_};
    }
    const PluginDevice& device = *it->second.device;
    if (!device.present) {
      return {{},
              what + ": device " + result.device + " (" + device.id + ") has been unplugged from " +
                  node_};
    }
    if (!device.healthy) return {{}, what + ": device " + result.device + " is unhealthy"};
    auto& list = ids[it->second.resource];
    if (std::find(list.begin(), list.end(), device.id) == list.end()) list.push_back(device.id);
    plugin_ids.emplace_back(it->second.resource->resource, device.id);
    out.devices.push_back({result.request,
                           result.pool,
                           result.device,
                           {deviceplugin::QualifiedCdiName(result.device),
                            deviceplugin::QualifiedCdiName(cdi_.ClaimDeviceName(ref.uid))}});
  }
  if (out.devices.empty()) return {{}, what + " has no device of edgefd.io allocated"};
  // The environment that sums up the allocation is exactly the device plugin's Allocate
  // answer for the same devices: one contract, one writer.
  std::map<std::string, std::string> vars;
  for (const auto& [resource, device_ids] : ids) {
    v1beta1::ContainerAllocateRequest request;
    for (const std::string& id : device_ids) request.add_devices_ids(id);
    v1beta1::ContainerAllocateResponse response;
    grpc::Status s = deviceplugin::AllocateContainer(*resource, request, response);
    if (!s.ok()) return {{}, what + ": " + s.error_message()};
    for (const auto& [k, v] : response.envs()) vars[k] = v;
  }
  env.clear();
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  return out;
}

PrepareResult ClaimPreparer::Prepare(const ClaimRef& ref) {
  if (ref.uid.empty() || ref.ns.empty() || ref.name.empty()) {
    return {
        {},
        "claim '" + Named(ref) + "' (uid '" + ref.uid + "'): namespace, name and uid are required"};
  }
  {
    std::lock_guard lock(mu_);
    auto it = prepared_.find(ref.uid);
    if (it != prepared_.end() && it->second.pending) {
      return {{}, "ResourceClaim " + Named(ref) + " is being prepared by another call"};
    }
    if (it != prepared_.end()) {
      // Prepared before (a retry, or the kubelet asking again after our restart): the same
      // answer, and the same spec on disk in case it went missing.
      if (!fs::exists(cdi_.ClaimSpecPath(ref.uid))) {
        if (Status s = cdi_.WriteClaim(ref.uid, it->second.env); !s) return {{}, s.error().message};
      }
      return {it->second.devices, ""};
    }
  }
  const std::string what = "ResourceClaim " + Named(ref);
  auto response = api_.GetResourceClaim(version_.version(), ref.ns, ref.name);
  if (!response) return {{}, what + ": " + response.error().message};
  if (response->status == 404) return {{}, what + " not found"};
  if (response->status != 200) return {{}, DescribeFailure("GET " + what, *response)};
  auto claim = ParseClaim(response->body, what);
  if (!claim) return {{}, claim.error().message};
  std::vector<std::string> env;
  std::vector<std::pair<std::string, std::string>> plugin_ids;
  PrepareResult result = Build(ref, *claim, env, plugin_ids);
  if (!result.error.empty()) return result;
  {
    std::lock_guard lock(mu_);
    if (auto it = prepared_.find(ref.uid); it != prepared_.end()) {
      if (it->second.pending) return {{}, what + " is being prepared by another call"};
      return {it->second.devices, ""};
    }
    // The spec first, then the record: a crash in between leaves a spec with no record,
    // which Start removes; never a record whose spec the runtime cannot find.
    if (Status s = cdi_.WriteClaim(ref.uid, env); !s) return {{}, s.error().message};
    prepared_[ref.uid] = PreparedClaim{ref.uid, ref.ns, ref.name, result.devices, env, true};
    if (Status s = checkpoint_.Save(prepared_); !s) {
      prepared_.erase(ref.uid);
      (void)cdi_.RemoveClaim(ref.uid);
      return {{}, s.error().message};
    }
  }
  // Recorded first, asked second: from the record on, the device plugin refuses these devices,
  // so an Allocate that the kubelet's answer does not show yet was answered before the record,
  // and the kubelet has recorded it by the time it answers (but for the instant between our
  // reply and its bookkeeping). Asked first, the whole check would be that window.
  std::string error = CheckAssignments(what, result, plugin_ids);
  {
    std::lock_guard lock(mu_);
    auto it = prepared_.find(ref.uid);
    if (it == prepared_.end()) return {{}, what + " was unprepared while it was being prepared"};
    if (error.empty()) {
      it->second.pending = false;
    } else {
      prepared_.erase(it);
    }
    if (Status s = checkpoint_.Save(prepared_); !s) {
      // The record on disk still says pending: a restart drops it, the kubelet asks again.
      prepared_.erase(ref.uid);
      error = s.error().message;
    }
    if (!error.empty()) (void)cdi_.RemoveClaim(ref.uid);
  }
  if (!error.empty()) {
    Changed();
    return {{}, error};
  }
  spdlog::info("prepared {} ({} device(s))", what, result.devices.size());
  Changed();
  return result;
}

std::string ClaimPreparer::Unprepare(const ClaimRef& ref) {
  {
    std::lock_guard lock(mu_);
    auto it = prepared_.find(ref.uid);
    if (it == prepared_.end()) {
      // Never prepared here, or already unprepared: done. A spec without a record would be
      // an earlier crash's leftover.
      if (!ref.uid.empty()) (void)cdi_.RemoveClaim(ref.uid);
      return "";
    }
    PreparedClaim claim = it->second;
    prepared_.erase(it);
    if (Status s = checkpoint_.Save(prepared_); !s) {
      prepared_.emplace(ref.uid, std::move(claim));
      return s.error().message;
    }
    if (Status s = cdi_.RemoveClaim(ref.uid); !s) {
      // The record is gone, so a later Start removes the file; the kubelet need not retry.
      spdlog::warn("{}", s.error().message);
    }
  }
  spdlog::info("unprepared ResourceClaim {}", Named(ref));
  Changed();
  return "";
}

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
      worker_(std::make_unique<TriggeredWorker>(
          TriggeredWorker::Options{},
          [this]() -> Status {
            if (ReportOnce()) return Ok{};
            return Error{"a claim status update failed"};
          },
          nullptr)) {}

DeviceLossReporter::~DeviceLossReporter() { Stop(); }

void DeviceLossReporter::Start() {
  if (listener_ != 0) return;
  listener_ = registry_.AddListener([this](const std::string&) { worker_->Trigger(); });
  worker_->Start();
}

void DeviceLossReporter::Stop() {
  if (listener_ == 0) return;
  registry_.RemoveListener(listener_);
  listener_ = 0;
  worker_->Stop();
}

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
    char now[32];
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
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
