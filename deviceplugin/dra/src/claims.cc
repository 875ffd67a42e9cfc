#include "edgefd/dra/claims.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/allocate.h"
#include "edgefd/deviceplugin/cdi.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
using deviceplugin::IsObjectUid;
using deviceplugin::PluginDevice;
using deviceplugin::ResourceSnapshot;

namespace {

std::string Named(const ClaimRef& ref) { return ref.ns + "/" + ref.name; }

// "" when the kubelet's names for a claim may go into a file name and an API path, else why
// not (quoting at most 64 bytes of each, as valid UTF-8).
std::string CheckRef(const ClaimRef& ref) {
  auto quoted = [](const std::string& s) { return "'" + ValidUtf8(s.substr(0, 64)) + "'"; };
  const std::string what =
      "claim " + quoted(ref.ns) + "/" + quoted(ref.name) + " (uid " + quoted(ref.uid) + "): ";
  if (!IsObjectUid(ref.uid)) {
    return what + "the UID is not a Kubernetes object UID (8-4-4-4-12 hexadecimal digits)";
  }
  if (!IsDnsLabel(ref.ns)) return what + "the namespace is not a DNS label";
  if (!IsDnsSubdomain(ref.name)) return what + "the name is not a DNS subdomain";
  return "";
}

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
  ClaimStats stats = stats_;
  stats.waits = locks_.waits();
  return stats;
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
    auto allocation = deviceplugin::AllocateDevices(*resource, device_ids);
    if (!allocation) return {{}, what + ": " + allocation.error().message};
    vars.insert(allocation->env.begin(), allocation->env.end());
  }
  env.clear();
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  return out;
}

PrepareResult ClaimPreparer::Prepare(const ClaimRef& ref, const Abandoned& abandoned) {
  if (std::string why = CheckRef(ref); !why.empty()) return {{}, why};
  ClaimLocks::Held held(locks_, ref.uid);
  return PrepareLocked(ref, abandoned);
}

PrepareResult ClaimPreparer::PrepareLocked(const ClaimRef& ref, const Abandoned& abandoned) {
  const std::string what = "ResourceClaim " + Named(ref);
  {
    std::lock_guard lock(mu_);
    if (auto it = prepared_.find(ref.uid); it != prepared_.end()) {
      // Prepared before (a retry, or the kubelet asking again after our restart): the same
      // answer, and the same spec on disk in case it went missing.
      if (!fs::exists(cdi_.ClaimSpecPath(ref.uid))) {
        if (Status s = cdi_.WriteClaim(ref.uid, it->second.env); !s) return {{}, s.error().message};
      }
      return {it->second.devices, ""};
    }
  }
  if (abandoned && abandoned()) return Abandon(what);
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
  if (abandoned && abandoned()) return Abandon(what);
  if (std::string error = Record(ref, result, env); !error.empty()) return {{}, error};
  // Recorded first, asked second: from the record on, the device plugin refuses these devices,
  // so an Allocate that the kubelet's answer does not show yet was answered before the record,
  // and the kubelet has recorded it by the time it answers (but for the instant between our
  // reply and its bookkeeping). Asked first, the whole check would be that window.
  std::string error = CheckAssignments(what, result, plugin_ids);
  error = Confirm(ref, std::move(error));
  Changed();
  if (!error.empty()) return {{}, error};
  spdlog::info("prepared {} ({} device(s))", what, result.devices.size());
  return result;
}

PrepareResult ClaimPreparer::Abandon(const std::string& what) {
  std::lock_guard lock(mu_);
  ++stats_.abandoned;
  return {{},
          what +
              ": not prepared, the kubelet gave up on the call (cancelled or past its "
              "deadline); it asks again"};
}

std::string ClaimPreparer::Record(const ClaimRef& ref, const PrepareResult& result,
                                  const std::vector<std::string>& env) {
  std::lock_guard lock(mu_);
  // The spec first, then the record: a crash in between leaves a spec with no record,
  // which Start removes; never a record whose spec the runtime cannot find.
  if (Status s = cdi_.WriteClaim(ref.uid, env); !s) return s.error().message;
  prepared_[ref.uid] = PreparedClaim{ref.uid, ref.ns, ref.name, result.devices, env, true};
  if (Status s = checkpoint_.Save(prepared_); !s) {
    prepared_.erase(ref.uid);
    (void)cdi_.RemoveClaim(ref.uid);
    return s.error().message;
  }
  return "";
}

std::string ClaimPreparer::Confirm(const ClaimRef& ref, std::string error) {
  std::lock_guard lock(mu_);
  // The claim's lock is held: nothing else removed the pending record meanwhile.
  auto it = prepared_.find(ref.uid);
  if (it == prepared_.end()) return "ResourceClaim " + Named(ref) + ": its record went missing";
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
  return error;
}

std::string ClaimPreparer::Unprepare(const ClaimRef& ref) {
  if (!IsObjectUid(ref.uid)) return CheckRef(ref);
  ClaimLocks::Held held(locks_, ref.uid);
  {
    std::lock_guard lock(mu_);
    auto it = prepared_.find(ref.uid);
    if (it == prepared_.end()) {
      // Never prepared here, or already unprepared: done. A spec without a record would be
      // an earlier crash's leftover.
      (void)cdi_.RemoveClaim(ref.uid);
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

struct ClaimLocks::Entry {
  std::mutex mu;
  int users = 0;  // holders and waiters; guarded by ClaimLocks::mu_
};

ClaimLocks::Held::Held(ClaimLocks& owner, std::string uid) : owner_(owner), uid_(std::move(uid)) {
  {
    std::lock_guard lock(owner_.mu_);
    std::shared_ptr<Entry>& entry = owner_.entries_[uid_];
    if (!entry) entry = std::make_shared<Entry>();
    ++entry->users;
    entry_ = entry;
  }
  if (!entry_->mu.try_lock()) {
    ++owner_.waits_;
    entry_->mu.lock();
  }
}

ClaimLocks::Held::~Held() {
  entry_->mu.unlock();
  std::lock_guard lock(owner_.mu_);
  if (--entry_->users == 0) owner_.entries_.erase(uid_);
}

}  // namespace edgefd::dra
