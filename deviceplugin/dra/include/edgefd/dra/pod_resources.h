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
#include "edgefd/deviceplugin/pod_resources.h"

namespace edgefd::deviceplugin {
class DeviceRegistry;
}

namespace edgefd {
class TriggeredWorker;
}  // namespace edgefd

namespace edgefd::dra {

// The PodResources client is part of the node's allocation record (edgefd_record), which the
// NRI plugin reads too; the DRA driver names its types as its own.
using deviceplugin::AssignedDevice;
using deviceplugin::kDefaultPodResourcesSocket;
using deviceplugin::PodResourcesClient;

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
