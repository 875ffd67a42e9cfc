#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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

class RegistryWorker;

/// A ResourceClaim as the kubelet names it.
struct ClaimRef {
  std::string ns;
  std::string uid;
  std::string name;
};

/// The answer for one claim: its devices, or why not. The error's code is the kind of
/// failure: kCancelled when the kubelet gave up on the call (KubeletPlugin then ends the call
/// CANCELLED), kInvalidArgument for names that cannot be a claim's, kNotFound,
/// kFailedPrecondition for a claim this node cannot honour, kUnavailable when a source of
/// truth cannot be asked, an API server failure's own kind (kube::HttpFailure).
using PrepareResult = Result<std::vector<PreparedDevice>>;

/// Whether the kubelet gave up on the call a claim came in (it was cancelled, or its deadline
/// passed): work for it stops before the next request to the API server. Empty: never.
using Abandoned = std::function<bool()>;

/// What the kubelet plugin's gRPC handlers call; they know nothing else.
class ClaimHandler {
 public:
  virtual ~ClaimHandler() = default;
  virtual PrepareResult Prepare(const ClaimRef& claim, const Abandoned& abandoned) = 0;
  virtual Status Unprepare(const ClaimRef& claim) = 0;
};

/// One lock per claim UID, held for the whole of a Prepare or Unprepare, and forgotten when no
/// call holds or waits for it.
class ClaimLocks {
  struct Entry;

 public:
  /// Holds `uid`'s lock from construction (waiting for another holder) to destruction.
  class Held {
   public:
    Held(ClaimLocks& owner, std::string uid);
    ~Held();
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    ClaimLocks& owner_;
    std::string uid_;
    std::shared_ptr<Entry> entry_;
  };

  /// Calls that found their claim held by another and waited (counted as they start waiting).
  uint64_t waits() const { return waits_; }

 private:
  std::atomic<uint64_t> waits_{0};
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

/// How many unreadable checkpoints Start keeps beside the file.
inline constexpr size_t kMaxCorruptCopies = 8;

/// What the kubelet's device manager assigned to running containers (PodResourcesClient::List).
using AssignmentSource = std::function<Result<std::vector<AssignedDevice>>()>;

/// Claims refused for the node's one allocation record.
struct ClaimStats {
  uint64_t conflicts = 0;            ///< a container held a device through the device plugin
  uint64_t assignments_unknown = 0;  ///< the PodResources API could not say (refused, not guessed)
  uint64_t waits = 0;                ///< calls that waited for another call on the same claim
  uint64_t abandoned = 0;            ///< prepares stopped because the kubelet gave up on the call
  uint64_t checkpoint_corrupt = 0;   ///< unreadable checkpoints set aside and rebuilt at Start
  uint64_t recovered_claims = 0;     ///< prepared claims rebuilt from the API server at Start
};

/// What Start did about a checkpoint it could not read.
struct CheckpointRecovery {
  std::string problem;          ///< why the checkpoint could not be read
  std::string kept_as;          ///< where the unreadable file now is
  size_t recovered = 0;         ///< claims rebuilt from the API server
  size_t specs_kept = 0;        ///< claim CDI specs of recovered claims already on disk
  size_t specs_removed = 0;     ///< claim CDI specs of claims the API shows on no pod here
  std::string Message() const;  ///< one line for the log and the Node's Event
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
/// the spec and the record; a claim it does not know is already unprepared. Calls on one claim
/// (by UID) run one at a time, so an Unprepare that comes while the claim's Prepare waits on
/// the API server waits for it and then undoes it. A UID that is not a Kubernetes object UID,
/// and a namespace or name that is not a DNS label or subdomain, is refused before it names a
/// file or an API path. Any problem with one claim is that claim's error, never the whole
/// call's. Safe from many threads.
class ClaimPreparer final : public ClaimHandler {
 public:
  /// Everything must outlive the preparer. `node` is this node's name (and pool).
  ClaimPreparer(deviceplugin::DeviceRegistry& registry, kube::ApiTransport& api,
                ResourceApi version, deviceplugin::CdiSpecDir& cdi, Checkpoint checkpoint,
                std::string node);

  /// Loads the checkpoint, drops records of prepares that did not finish (pending: the kubelet
  /// asks again), writes the CDI specs of the prepared claims again (/var/run is empty after a
  /// reboot) and removes claim specs of claims it has no record of. A checkpoint of a newer
  /// format is an Error naming the file, which is left as it is. A checkpoint that cannot be
  /// read (corrupt, truncated, a symbolic link) is rebuilt before anything is deleted: every
  /// ResourceClaim the API server shows allocated from this node's pool and reserved for a pod
  /// is prepared again (and its spec kept or written), only specs of other claims go, and the
  /// file is kept as `<file>.corrupt.<UTC time>` (the newest kMaxCorruptCopies are kept). When
  /// the API server cannot be asked, Start fails and nothing is moved or deleted. Fails too
  /// when the checkpoint directory or the CDI directory cannot be written.
  Status Start();
  /// What Start rebuilt, when the checkpoint could not be read.
  std::optional<CheckpointRecovery> Recovery() const;

  PrepareResult Prepare(const ClaimRef& claim, const Abandoned& abandoned) override;
  PrepareResult Prepare(const ClaimRef& claim) { return Prepare(claim, nullptr); }
  Status Unprepare(const ClaimRef& claim) override;

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
  // Ok when no container holds any of `plugin_ids` through the device plugin, else why not.
  Status CheckAssignments(const std::string& what, const std::vector<PreparedDevice>& devices,
                          const std::vector<std::pair<std::string, std::string>>& plugin_ids);
  void Changed();
  // Under mu_: the records from a checkpoint that cannot be read (`problem` says why).
  Status Recover(const std::string& problem);
  // Under mu_: moves the unreadable checkpoint aside; where it went.
  std::string SetAside();
  // Prepare once the claim's lock is held.
  PrepareResult PrepareLocked(const ClaimRef& ref, const Abandoned& abandoned);
  // The answer for a claim whose call the kubelet abandoned.
  PrepareResult Abandon(const std::string& what);
  // Records a built claim (pending when an AssignmentSource is set).
  Status Record(const ClaimRef& ref, const std::vector<PreparedDevice>& devices,
                const std::vector<std::string>& env);
  // The end of a pending record: confirmed when `checked` is Ok, else removed.
  Status Confirm(const ClaimRef& ref, Status checked);

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
  std::optional<CheckpointRecovery> recovery_;
  ClaimLocks locks_;  // one call per claim at a time
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
  std::unique_ptr<RegistryWorker> worker_;
};

}  // namespace edgefd::dra
