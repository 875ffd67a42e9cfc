#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace grpc {
class ClientContext;
}

namespace edgefd::deviceplugin {
class DeviceRegistry;
}

namespace edgefd {
class TriggeredWorker;
}  // namespace edgefd

namespace edgefd::dra {

/// Where the kubelet serves its PodResources API.
inline constexpr std::string_view kDefaultPodResourcesSocket =
    "/var/lib/kubelet/pod-resources/kubelet.sock";

/// One device the kubelet's device manager assigned to a container (device plugin path).
struct AssignedDevice {
  std::string ns;         ///< the pod's namespace
  std::string pod;        ///< the pod's name
  std::string container;  ///< the container's name
  std::string resource;   ///< "edgefd.io/big-cpu"
  std::string id;         ///< the device plugin's device ID ("cpu4", "1-1.2")

  bool operator==(const AssignedDevice&) const = default;
};

/// A client of the kubelet's PodResources API v1 (`v1.PodResourcesLister/List`), the standard
/// record of what the device manager assigned to running containers. Each call dials afresh,
/// so a restarted kubelet is reached at once. Safe from many threads.
class PodResourcesClient {
 public:
  explicit PodResourcesClient(std::filesystem::path socket,
                              std::chrono::milliseconds deadline = std::chrono::seconds(2));

  const std::filesystem::path& socket() const { return socket_; }

  /// Every device of a resource under edgefd.io/ that a container holds now. A socket that
  /// is missing, refuses, answers an error or not within the deadline is an Error naming the
  /// socket (the caller refuses rather than guesses). The answer is untrusted: a reply over
  /// 16 MiB is refused, and entries past a bound are an error, never a partial answer.
  Result<std::vector<AssignedDevice>> List() const;
  /// Ends the calls in flight and fails every later one at once (the program is stopping: no
  /// prepare waits out the deadline).
  void Cancel();

 private:
  std::filesystem::path socket_;
  std::chrono::milliseconds deadline_;
  mutable std::mutex mu_;  // guards calls_ and cancelled_
  mutable std::set<grpc::ClientContext*> calls_;
  bool cancelled_ = false;
};

/// What the device plugin handed out, as DRA device names, followed by polling the
/// PodResources API (it has no watch) every `period` and whenever Refresh is called; the
/// pool taints those devices so the scheduler gives them to no claim. Advice to the
/// scheduler only: NodePrepareResources asks the kubelet itself. While the API cannot be
/// reached the last answer stands (with a warning).
class DevicePluginHoldings {
 public:
  /// `client` and `registry` must outlive it; `on_change` runs on its thread.
  DevicePluginHoldings(PodResourcesClient& client, deviceplugin::DeviceRegistry& registry,
                       std::chrono::milliseconds period, std::function<void()> on_change);
  ~DevicePluginHoldings();
  void Start();
  void Stop();
  /// Polls now (a prepare just met a device the device plugin handed out).
  void Refresh();
  /// The device names as last polled.
  std::set<std::string> Names() const;
  /// One poll on the calling thread; for tests.
  Status PollOnce();

 private:
  PodResourcesClient& client_;
  deviceplugin::DeviceRegistry& registry_;
  std::function<void()> on_change_;
  mutable std::mutex mu_;  // guards names_
  std::set<std::string> names_;
  std::unique_ptr<TriggeredWorker> worker_;
};

}  // namespace edgefd::dra
