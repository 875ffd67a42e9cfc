#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "edgefd/common/health.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// Counters of the device plugin, rendered in the Prometheus text format on /metrics.
/// Every method is safe from any thread.
class Metrics {
 public:
  void CountAllocate(const std::string& resource, bool ok);
  void CountRegistration(const std::string& resource, bool ok);
  void CountKubeletRestart() { kubelet_restarts_.fetch_add(1, std::memory_order_relaxed); }
  void CountInventoryRefresh(bool ok);
  void SetDevices(const std::string& resource, int healthy, int unhealthy);
  void SetRegistered(const std::string& resource, bool registered);
  void AddWatchStreams(int delta) { watch_streams_.fetch_add(delta, std::memory_order_relaxed); }
  /// What the DRA checkpoint says now: readable or not, and how many devices claims hold.
  void SetDraCheckpoint(bool readable, int held_devices);
  /// An Allocate refused because a prepared DRA claim holds a device it names (or the
  /// checkpoint could not vouch for it).
  void CountDraRefusal(const std::string& resource);

  /// True once every known resource is registered with the kubelet (and at least one is).
  bool AllRegistered() const;
  /// The Prometheus text exposition of every counter.
  std::string Render() const;

 private:
  struct PerResource {
    uint64_t allocations = 0;
    uint64_t allocation_errors = 0;
    uint64_t registrations = 0;
    uint64_t registration_failures = 0;
    int healthy = 0;
    int unhealthy = 0;
    bool registered = false;
    uint64_t dra_refusals = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, PerResource> resources_;
  uint64_t refreshes_ = 0;
  uint64_t refresh_failures_ = 0;
  std::atomic<uint64_t> kubelet_restarts_{0};
  std::atomic<int64_t> watch_streams_{0};
  bool dra_checkpoint_readable_ = true;
  int dra_held_devices_ = 0;
};

/// What the plugin's /readyz and /metrics say (edgefd/common/health.h): ready once every
/// resource is registered with the kubelet. Both must outlive what is served from them.
HealthChecks PluginHealth(const Metrics& metrics, const DeviceRegistry& registry);

}  // namespace edgefd::deviceplugin
