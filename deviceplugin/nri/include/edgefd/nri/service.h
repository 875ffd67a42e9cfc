#pragma once

// The NRI plugin's service, apart from the transport: one ttrpc request of the runtime in
// (service, method, protobuf payload), one answer out, and the cpuset changes that must go to
// the runtime unsolicited (UpdateContainers: RemoveContainer has no way to answer with them).
// Thread-safe; the session (session.h) calls Handle from its loop, /metrics reads Stats.

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/nri/policy.h"
#include "edgefd/nri/record.h"

namespace edgefd::nri {

/// The ttrpc service names of the NRI API (package nri.pkg.api.v1alpha1).
inline constexpr std::string_view kPluginService = "nri.pkg.api.v1alpha1.Plugin";
inline constexpr std::string_view kRuntimeService = "nri.pkg.api.v1alpha1.Runtime";

/// Counters and gauges of edgefd-nri, for /metrics. Safe from any thread.
struct Metrics {
  std::atomic<bool> connected{false};
  std::atomic<bool> synchronized{false};
  std::atomic<uint64_t> connections{0};      ///< registrations that succeeded
  std::atomic<uint64_t> disconnects{0};      ///< connections lost after registering
  std::atomic<uint64_t> protocol_errors{0};  ///< frames or messages dropped as invalid
  std::atomic<uint64_t> invalid_cpus{0};     ///< containers naming cores that are not online
  /// Containers naming cores the allocation record does not give them (refused).
  std::atomic<uint64_t> unverified_cpus{0};
  std::atomic<uint64_t> record_failures{0};  ///< reads of the allocation record that failed
  std::atomic<uint64_t> updates{0};          ///< cpuset updates sent for running containers
  std::atomic<uint64_t> update_failures{0};  ///< of those, reported failed or unanswered

  void CountRequest(std::string_view method);
  std::map<std::string, uint64_t> Requests() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, uint64_t> requests_;
};

/// What the tracker holds, for /metrics.
struct TrackerStats {
  std::vector<int> held;
  size_t holders = 0;
  size_t confined = 0;
  size_t online = 0;
};

/// A ttrpc answer.
struct Answer {
  int code = 0;         ///< a gRPC status code (0 = OK)
  std::string message;  ///< why, when code != 0
  std::string payload;  ///< the serialized response message
  /// Cpusets to send with UpdateContainers once the answer is out.
  std::vector<CpusetUpdate> unsolicited;
};

class NriService {
 public:
  /// `metrics` and `record` must outlive it.
  NriService(std::vector<int> online, Policy policy, Metrics& metrics, AllocationRecord& record);

  /// Answers one request of the runtime.
  Answer Handle(std::string_view service, std::string_view method, std::string_view payload);
  /// A new connection: a Synchronize cut off by the old one is dropped.
  void Reset();

  TrackerStats Stats() const;
  Policy policy() const { return policy_; }

  /// The events the plugin subscribes to (ConfigureResponse.events).
  static int32_t EventMask();

 private:
  Answer Configure(std::string_view payload);
  Answer Synchronize(std::string_view payload);
  Answer CreateContainer(std::string_view payload);
  Answer UpdateContainer(std::string_view payload);
  Answer StopContainer(std::string_view payload);
  Answer RemoveContainer(std::string_view payload);
  Answer StateChange(std::string_view payload);
  void LogWarnings();
  Result<HeldCores> ReadRecord();

  const Policy policy_;
  Metrics& metrics_;
  AllocationRecord& record_;
  const std::vector<int> online_;
  mutable std::mutex mu_;
  CoreTracker tracker_;
  std::vector<Workload> sync_parts_;  ///< a split Synchronize so far
};

}  // namespace edgefd::nri
