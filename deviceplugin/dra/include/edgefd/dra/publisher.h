#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/dra/calibration.h"
#include "edgefd/dra/resource_api.h"
#include "edgefd/dra/slices.h"
#include "edgefd/kube/api.h"

namespace edgefd::dra {

class RegistryWorker;

/// Whether vanished devices are tainted in the slice. kAuto asks the API server (a dry-run
/// create with a taint) whether it keeps device taints, i.e. whether the DRADeviceTaints
/// feature is on.
enum class TaintMode { kAuto, kOn, kOff };

/// Counters of the publisher, for /metrics and tests.
struct PublisherStats {
  uint64_t syncs = 0;      ///< successful syncs that wrote something
  uint64_t failures = 0;   ///< failed sync attempts (retried)
  uint64_t writes = 0;     ///< POST/PUT/DELETE requests that succeeded
  int64_t generation = 0;  ///< pool generation last written
  size_t devices = 0;      ///< devices in the pool as last written
  bool published = false;  ///< the pool has been written at least once
  bool taints = false;     ///< taints in use
  std::string last_error;
};

/// Publishes the node's pool of ResourceSlices and keeps it equal to the registry: one pool
/// named after the node, slices "<node>-edgefd.io-<i>", every change a new pool generation.
/// At start it removes slices of this node and driver it does not want (stale ones from an
/// earlier run or another writer). Changes are written on its own thread as soon as the
/// registry (or the set of held devices) changes; failures are retried with backoff; every
/// `resync` it lists the pool and repairs it if someone else changed or deleted a slice.
class SlicePublisher {
 public:
  struct Options {
    std::string node;
    std::string node_uid;  ///< empty: no owner reference
    TaintMode taints = TaintMode::kAuto;
    std::chrono::milliseconds resync{std::chrono::seconds(60)};
    std::chrono::milliseconds min_backoff{200};
    std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  };
  /// Which device names prepared claims hold (vanished held devices stay, tainted).
  using HeldFn = std::function<std::set<std::string>()>;

  /// Everything must outlive the publisher.
  SlicePublisher(deviceplugin::DeviceRegistry& registry, kube::ApiTransport& api,
                 ResourceApi version, Options options, HeldFn held);
  ~SlicePublisher();
  SlicePublisher(const SlicePublisher&) = delete;
  SlicePublisher& operator=(const SlicePublisher&) = delete;

  /// Decides the taint mode (in auto mode a probe that fails counts as "no taints", with a
  /// warning), then publishes on its own thread and follows the registry.
  void Start();
  /// Stops the thread; the slices stay (the kubelet removes them if the plugin does not come
  /// back, and a restarted plugin takes them over).
  void Stop();
  /// Device names that containers hold through the device plugin (PoolDevices' `taken`);
  /// call before Start. Its changes come through Trigger.
  void SetTaken(HeldFn taken);
  /// --calibration: every sync reads `file` again and puts the measured speed on the CPU
  /// devices (AddCalibrationAttributes; none while it cannot be read). Call before Start; the
  /// file must outlive the publisher. A change of the file comes through Trigger.
  void SetCalibration(CalibrationFile* file);
  /// Asks for a sync now (held devices changed, the kubelet registered us again).
  void Trigger();
  /// Asks for a check of the pool within `delay`: after a kubelet restart, whose wipe of the
  /// node's slices may come a moment after it registered us again.
  void CheckIn(std::chrono::milliseconds delay);
  /// Runs one sync on the calling thread; for tests and the bench.
  Status SyncOnce();

  PublisherStats Stats() const;
  /// Waits until a sync has written generation >= `generation`; false on timeout.
  bool WaitForGeneration(int64_t generation, std::chrono::milliseconds timeout);

 private:
  struct Existing {
    std::string name;
    std::string resource_version;
    int64_t generation = 0;
  };
  Result<std::vector<Existing>> List();
  bool ProbeTaints();
  std::vector<SliceDevice> Desired();

  deviceplugin::DeviceRegistry& registry_;
  kube::Api api_;
  const ResourceApi version_;
  const Options options_;
  HeldFn held_;
  HeldFn taken_;
  CalibrationFile* calibration_ = nullptr;
  bool taints_ = false;
  std::unique_ptr<RegistryWorker> worker_;

  std::mutex sync_mu_;  // one sync at a time; guards the fields below it
  std::vector<SliceDevice> last_written_;
  std::map<std::string, std::string> written_versions_;  // slice name → resourceVersion
  std::map<std::string, std::string> taint_times_;       // device name → timeAdded
  int64_t generation_ = 0;

  mutable std::mutex mu_;  // guards stats_
  std::condition_variable cv_;
  PublisherStats stats_;
};

/// Parses "true"/"false"/"auto" style flag values.
Result<TaintMode> ParseTaintMode(std::string_view value);

}  // namespace edgefd::dra
