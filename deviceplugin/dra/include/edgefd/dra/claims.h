#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/dra/checkpoint.h"
#include "edgefd/dra/pod_resources.h"
#include "edgefd/dra/resource_api.h"
#include "edgefd/kube/api.h"

namespace edgefd::dra {

class TriggeredWorker;

/// A ResourceClaim as the kubelet names it.
struct ClaimRef {
  std::string ns;
  std::string uid;
  std::string name;
};

/// The answer for one claim: its devices, or an error (then devices are ignored).
struct PrepareResult {
  std::vector<PreparedDevice> devices;
  std::string error;
};

/// What the kubelet plugin's gRPC handlers call; they know nothing else.
class ClaimHandler {
 public:
  virtual ~ClaimHandler() = default;
  virtual PrepareResult Prepare(const ClaimRef& claim) = 0;
  /// "" on success.
  virtual std::string Unprepare(const ClaimRef& claim) = 0;
};

/// What the kubelet's device manager assigned to running containers (PodResourcesClient::List).
using AssignmentSource = std::function<Result<std::vector<AssignedDevice>>()>;

/// Claims refused for the node's one allocation record.
struct ClaimStats {
  uint64_t conflicts = 0;            ///< a container held a device through the device plugin
  uint64_t assignments_unknown = 0;  ///< the PodResources API could not say (refused, not guessed)
};

/// Prepares and unprepares claims over the registry (the state of dra-example-driver's
/// state.go): Prepare answers a claim it prepared before from the checkpoint (a repeated or
/// post-restart call is idempotent); otherwise it reads the claim from the API server,
/// checks that every allocation result of edgefd.io is in this node's pool and names a
/// device this node has, present and healthy, writes the claim's CDI spec (the environment
/// that sums up the allocation) and records the claim in the checkpoint before answering
/// with each device's CDI names (its common-spec device and the claim's). With an
/// AssignmentSource (SetAssignments) the record is first written as pending, which already
/// withdraws its devices from the device plugin, then the kubelet is asked what the device
/// plugin handed out, and the record is confirmed or removed. Unprepare removes
/// the spec and the record; a claim it does not know is already unprepared. Any problem with
/// one claim is that claim's error, never the whole call's. Safe from many threads.
class ClaimPreparer final : public ClaimHandler {
 public:
  /// Everything must outlive the preparer. `node` is this node's name (and pool).
  ClaimPreparer(deviceplugin::DeviceRegistry& registry, kube::ApiTransport& api,
                ResourceApi version, deviceplugin::CdiSpecDir& cdi, Checkpoint checkpoint,
                std::string node);

  /// Loads the checkpoint (a corrupt one is renamed to `<file>.corrupt` with an error in the
  /// log, and the plugin starts empty: the kubelet still unprepares those claims, which then
  /// succeeds), drops records of prepares that did not finish (pending: the kubelet asks
  /// again), writes the CDI specs of the prepared claims again (/var/run is empty after a
  /// reboot) and removes claim specs of claims it has no record of. Fails when the checkpoint
  /// directory or the CDI directory cannot be written.
  Status Start();

  PrepareResult Prepare(const ClaimRef& claim) override;
  std::string Unprepare(const ClaimRef& claim) override;

  /// Names of the devices prepared claims hold.
  std::set<std::string> HeldDevices() const;
  /// A copy of every prepared claim.
  PreparedClaims Claims() const;
  /// Called (outside any lock) after the set of prepared claims changed.
  void SetOnChange(std::function<void()> on_change);
  /// From now on Prepare asks `source` before it prepares a new claim, and refuses a claim
  /// with a device that a container holds through the device plugin (naming the device and
  /// the pod), or when `source` fails (naming why): one allocation record per node. Nothing is
  /// remembered between calls, so restarts of the kubelet or of edgefd change nothing.
  void SetAssignments(AssignmentSource source);
  /// What was refused for the allocation record so far.
  ClaimStats Stats() const;
  /// Called (outside any lock) after a claim was refused because a container holds one of
  /// its devices through the device plugin.
  void SetOnConflict(std::function<void()> on_conflict);

 private:
  // The claim's entry, or an error; `claim` is the API object.
  // `plugin_ids` gets each device's resource and device-plugin ID, in the order of the result.
  PrepareResult Build(const ClaimRef& ref, const ClaimObject& claim, std::vector<std::string>& env,
                      std::vector<std::pair<std::string, std::string>>& plugin_ids);
  // "" when no container holds any of `plugin_ids` through the device plugin, else why not.
  std::string CheckAssignments(const std::string& what, const PrepareResult& result,
                               const std::vector<std::pair<std::string, std::string>>& plugin_ids);
  void Changed();

  deviceplugin::DeviceRegistry& registry_;
  kube::Api api_;
  const ResourceApi version_;
  deviceplugin::CdiSpecDir& cdi_;
  const Checkpoint checkpoint_;
  const std::string node_;
  mutable std::mutex mu_;  // guards prepared_ and the files
  PreparedClaims prepared_;
  std::function<void()> on_change_;
  AssignmentSource assignments_;
  std::function<void()> on_conflict_;
  ClaimStats stats_;
};

/// When a device that a prepared claim holds vanishes and the cluster keeps no device taints,
/// says so in the claim's status instead: a `Ready=False` condition (reason DeviceUnplugged) on
/// the device's entry in status.devices, and `Ready=True` (reason DevicePresent) when it comes
/// back. Works on its own thread; failed writes are retried with backoff.
class DeviceLossReporter {
 public:
  /// `taints` says whether the publisher taints vanished devices (then nothing is written).
  DeviceLossReporter(deviceplugin::DeviceRegistry& registry, ClaimPreparer& claims,
                     kube::ApiTransport& api, ResourceApi version, std::string node,
                     std::function<bool()> taints);
  ~DeviceLossReporter();
  void Start();
  void Stop();
  /// Runs one pass on the calling thread; false when a write failed.
  bool ReportOnce();

 private:
  bool SetCondition(const PreparedClaim& claim, const std::string& device, bool ready);

  deviceplugin::DeviceRegistry& registry_;
  ClaimPreparer& claims_;
  kube::Api api_;
  const ResourceApi version_;
  const std::string node_;
  std::function<bool()> taints_;
  std::mutex pass_mu_;
  std::map<std::string, bool> reported_;  // "<uid>/<device>" → last reported readiness
  int listener_ = 0;
  std::unique_ptr<TriggeredWorker> worker_;
};

}  // namespace edgefd::dra
