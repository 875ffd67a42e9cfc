#include "edgefd/dra/claims.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/allocate.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/kube/events.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
using deviceplugin::IsObjectUid;
using deviceplugin::PluginDevice;
using deviceplugin::ResourceSnapshot;

namespace {

std::string Named(const ClaimRef& ref) { return ref.ns + "/" + ref.name; }

// Ok when the kubelet's names for a claim may go into a file name and an API path, else why
// not (quoting at most 64 bytes of each, as valid UTF-8).
Status CheckRef(const ClaimRef& ref) {
  auto quoted = [](const std::string& s) { return "'" + ValidUtf8(s.substr(0, 64)) + "'"; };
  auto bad = [&](const char* why) {
    return Error{"claim " + quoted(ref.ns) + "/" + quoted(ref.name) + " (uid " + quoted(ref.uid) +
                     "): " + why,
                 ErrorCode::kInvalidArgument};
  };
  if (!IsObjectUid(ref.uid)) {
    return bad("the UID is not a Kubernetes object UID (8-4-4-4-12 hexadecimal digits)");
  }
  if (!IsDnsLabel(ref.ns)) return bad("the namespace is not a DNS label");
  if (!IsDnsSubdomain(ref.name)) return bad("the name is not a DNS subdomain");
  return Ok{};
}

// A claim this node cannot honour as it stands.
Error Unfit(std::string message) {
  return Error{std::move(message), ErrorCode::kFailedPrecondition};
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

Status ClaimPreparer::CheckAssignments(
    const std::string& what, const std::vector<PreparedDevice>& devices,
    const std::vector<std::pair<std::string, std::string>>& plugin_ids) {
  AssignmentSource source;
  {
    std::lock_guard lock(mu_);
    source = assignments_;
  }
  if (!source) return Ok{};
  auto assigned = source();
  if (!assigned) {
    std::lock_guard lock(mu_);
    ++stats_.assignments_unknown;
    return Error{what + ": cannot tell whether a container holds its devices through the " +
                     "device plugin, so it is not prepared (refusing rather than guessing; the " +
                     "kubelet retries): " + assigned.error().message,
                 ErrorCode::kUnavailable};
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
      return Unfit(what + ": device " + devices[i].device + " (" + resource + " " + id +
                   ") is held by container " + a.container + " of pod " + a.ns + "/" + a.pod +
                   " through the device plugin; a device goes to one container at a time");
    }
  }
  return Ok{};
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
    return Unfit(what + " has UID " + claim.uid + " but the kubelet asked for " + ref.uid +
                 " (was it deleted and created again?)");
  }
  if (!claim.allocated) return Unfit(what + " is not allocated");
  if (std::find(claim.config_drivers.begin(), claim.config_drivers.end(), kDriverName) !=
      claim.config_drivers.end()) {
    return Error{what + ": edgefd.io takes no opaque device configuration",
                 ErrorCode::kInvalidArgument};
  }
  const std::vector<ResourceSnapshot> resources = deviceplugin::AllSnapshots(registry_);
  std::map<std::string, Located> by_name;
  for (const ResourceSnapshot& r : resources) {
    for (const PluginDevice& d : r.devices)
      by_name.emplace(deviceplugin::DeviceName(r, d), Located{&r, &d});
  }
  std::vector<PreparedDevice> out;
  std::map<const ResourceSnapshot*, std::vector<std::string>> ids;  // per resource, in order
  for (const AllocationResult& result : claim.results) {
    if (result.driver != kDriverName) continue;  // another driver's device in a mixed claim
    if (result.pool != node_) {
      return Unfit(what + ": device " + result.device + " is allocated from pool " + result.pool +
                   ", but this is node " + node_);
    }
    auto it = by_name.find(result.device);
    if (it == by_name.end()) {
      return Error{what + ": device " + result.device + " is not a device of edgefd.io on " + node_,
                   ErrorCode::kNotFound};
    }
    const PluginDevice& device = *it->second.device;
    if (!device.present) {
      return Unfit(what + ": device " + result.device + " (" + device.id +
                   ") has been unplugged from " + node_);
    }
    if (!device.healthy) return Unfit(what + ": device " + result.device + " is unhealthy");
    auto& list = ids[it->second.resource];
    if (std::find(list.begin(), list.end(), device.id) == list.end()) list.push_back(device.id);
    plugin_ids.emplace_back(it->second.resource->resource, device.id);
    out.push_back({result.request,
                   result.pool,
                   result.device,
                   {deviceplugin::QualifiedCdiName(result.device),
                    deviceplugin::QualifiedCdiName(cdi_.ClaimDeviceName(ref.uid))}});
  }
  if (out.empty()) return Unfit(what + " has no device of edgefd.io allocated");
  // The environment that sums up the allocation is exactly the device plugin's Allocate
  // answer for the same devices: one contract, one writer.
  std::map<std::string, std::string> vars;
  for (const auto& [resource, device_ids] : ids) {
    auto allocation = deviceplugin::AllocateDevices(*resource, device_ids);
    if (!allocation) return Within(what, allocation.error());
    vars.insert(allocation->env.begin(), allocation->env.end());
  }
  env.clear();
  for (const auto& [k, v] : vars) env.push_back(k + "=" + v);
  return out;
}

PrepareResult ClaimPreparer::Prepare(const ClaimRef& ref, const Abandoned& abandoned) {
  if (Status s = CheckRef(ref); !s) return s.error();
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
        if (Status s = cdi_.WriteClaim(ref.uid, it->second.env); !s) return s.error();
      }
      return it->second.devices;
    }
  }
  if (abandoned && abandoned()) return Abandon(what);
  auto response = api_.GetResourceClaim(version_.version(), ref.ns, ref.name);
  if (!response) return Within(what, response.error());
  if (response->status == 404) return Error{what + " not found", ErrorCode::kNotFound};
  if (response->status != 200) return kube::HttpFailure("GET " + what, *response);
  auto claim = ParseClaim(response->body, what);
  if (!claim) return claim.error();
  std::vector<std::string> env;
  std::vector<std::pair<std::string, std::string>> plugin_ids;
  PrepareResult result = Build(ref, *claim, env, plugin_ids);
  if (!result) return result;
  if (abandoned && abandoned()) return Abandon(what);
  if (Status s = Record(ref, *result, env); !s) return s.error();
  // Recorded first, asked second: from the record on, the device plugin refuses these devices,
  // so an Allocate that the kubelet's answer does not show yet was answered before the record,
  // and the kubelet has recorded it by the time it answers (but for the instant between our
  // reply and its bookkeeping). Asked first, the whole check would be that window.
  Status confirmed = Confirm(ref, CheckAssignments(what, *result, plugin_ids));
  Changed();
  if (!confirmed) return confirmed.error();
  spdlog::info("prepared {} ({} device(s))", what, result->size());
  return result;
}

PrepareResult ClaimPreparer::Abandon(const std::string& what) {
  std::lock_guard lock(mu_);
  ++stats_.abandoned;
  return Error{what +
                   ": not prepared, the kubelet gave up on the call (cancelled or past its "
                   "deadline); it asks again",
               ErrorCode::kCancelled};
}

Status ClaimPreparer::Record(const ClaimRef& ref, const std::vector<PreparedDevice>& devices,
                             const std::vector<std::string>& env) {
  std::lock_guard lock(mu_);
  // The spec first, then the record: a crash in between leaves a spec with no record,
  // which Start removes; never a record whose spec the runtime cannot find.
  if (Status s = cdi_.WriteClaim(ref.uid, env); !s) return s;
  prepared_[ref.uid] = PreparedClaim{ref.uid, ref.ns, ref.name, devices, env, true};
  if (Status s = checkpoint_.Save(prepared_); !s) {
    prepared_.erase(ref.uid);
    (void)cdi_.RemoveClaim(ref.uid);
    return s;
  }
  return Ok{};
}

Status ClaimPreparer::Confirm(const ClaimRef& ref, Status checked) {
  std::lock_guard lock(mu_);
  // The claim's lock is held: nothing else removed the pending record meanwhile.
  auto it = prepared_.find(ref.uid);
  if (it == prepared_.end()) {
    return Error{"ResourceClaim " + Named(ref) + ": its record went missing", ErrorCode::kInternal};
  }
  if (checked) {
    it->second.pending = false;
  } else {
    prepared_.erase(it);
  }
  if (Status s = checkpoint_.Save(prepared_); !s) {
    // The record on disk still says pending: a restart drops it, the kubelet asks again.
    prepared_.erase(ref.uid);
    checked = s;
  }
  if (!checked) (void)cdi_.RemoveClaim(ref.uid);
  return checked;
}

Status ClaimPreparer::Unprepare(const ClaimRef& ref) {
  if (!IsObjectUid(ref.uid)) return CheckRef(ref);
  ClaimLocks::Held held(locks_, ref.uid);
  {
    std::lock_guard lock(mu_);
    auto it = prepared_.find(ref.uid);
    if (it == prepared_.end()) {
      // Never prepared here, or already unprepared: done. A spec without a record would be
      // an earlier crash's leftover.
      (void)cdi_.RemoveClaim(ref.uid);
      return Ok{};
    }
    PreparedClaim claim = it->second;
    prepared_.erase(it);
    if (Status s = checkpoint_.Save(prepared_); !s) {
      prepared_.emplace(ref.uid, std::move(claim));
      return s;
    }
    if (Status s = cdi_.RemoveClaim(ref.uid); !s) {
      // The record is gone, so a later Start removes the file; the kubelet need not retry.
      spdlog::warn("{}", s.error().message);
    }
  }
  spdlog::info("unprepared ResourceClaim {}", Named(ref));
  Changed();
  return Ok{};
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
