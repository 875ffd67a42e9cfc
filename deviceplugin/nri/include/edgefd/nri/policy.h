#pragma once

// Which cpuset each container gets: pure functions of the containers' environments and the
// node's online cores, and a tracker that remembers what was set so that only changes are sent.
// No I/O: the plugin (plugin.h) feeds it the runtime's requests.
//
// A container holds the cores its EDGEFD_BIG_CPUS / EDGEFD_MID_CPUS / EDGEFD_LITTLE_CPUS name
// (edgefd/common/allocation.h; the device plugin's Allocate envs or the DRA driver's per-claim
// CDI spec put them there) and the node's allocation record gives it: a pod can set those
// variables itself, so a core the record (record.h) does not give the container is refused, and
// while the record cannot be read every core is. Cores that are not online are dropped too (the
// container keeps the valid rest; with none valid it holds nothing and is treated as any other
// container). A
// holder's cpuset is exactly its cores. With the exclusive policy every other live container
// gets the online cores minus every held core, and back the whole set when they are freed;
// when that would leave no core it is left alone (never an empty cpuset). The shared policy
// pins holders only.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace edgefd::nri {

enum class Policy { kExclusive, kShared };

/// "exclusive" or "shared".
std::optional<Policy> ParsePolicy(std::string_view word);

/// The cores a container's environment says it holds, checked against the online cores and
/// the node's allocation record.
struct Holding {
  std::vector<int> cpus;     ///< held and online, ascending
  std::vector<int> offline;  ///< named but not online: ignored
  Status env = Ok{};         ///< or why a variable is not a CPU list (nothing is held then)
  /// Named and online, but not given to the container by the allocation record (a forged
  /// variable, or a record that could not be read): refused.
  std::vector<int> unheld;
  Status record = Ok{};  ///< or why the record could not be read (its own error and code)

  bool holder() const { return !cpus.empty(); }
  /// True when the environment named cores that cannot be honoured (offline or malformed).
  bool invalid() const { return !offline.empty() || !env.ok(); }
  /// True when the record refused cores the environment named.
  bool refused() const { return !unheld.empty(); }
};

/// Reads the EDGEFD_*_CPUS variables of `env` (KEY=VALUE) against `online` (ascending).
Holding ReadHolding(const std::vector<std::string>& env, const std::vector<int>& online);

/// A container as the kubelet names it (the PodResources API's keys).
struct ContainerRef {
  std::string ns;
  std::string pod;
  std::string container;

  auto operator<=>(const ContainerRef&) const = default;
};

/// The cores each container holds by the node's allocation record, ascending.
using HeldCores = std::map<ContainerRef, std::vector<int>>;

/// Keeps of `holding.cpus` only the cores `record` gives `ref`, moving the rest to `unheld`.
/// A record that could not be read gives nothing (refuse, never guess).
void CheckAgainstRecord(Holding& holding, const ContainerRef& ref, const Result<HeldCores>& record);

/// The cpuset a container should have, given every held core (`held`, ascending); nullopt
/// to leave it as it is (shared policy for a non-holder, or nothing would be left).
std::optional<std::vector<int>> TargetCpus(const Holding& holding, const std::vector<int>& held,
                                           const std::vector<int>& online, Policy policy);

/// A container as the plugin sees it.
struct Workload {
  std::string id;
  std::string name;  ///< namespace/pod/container, for log lines
  ContainerRef ref;
  Holding holding;
  std::string cpus;  ///< the cpuset the runtime reports; "" for none (every core)
};

/// A cpuset to set on a running container.
struct CpusetUpdate {
  std::string id;
  std::string cpus;  ///< a CPU list ("0,2,3")

  bool operator==(const CpusetUpdate&) const = default;
};

/// The live containers (created, running, paused) the plugin knows, and the cpuset it last
/// set or saw on each: from it, the updates a change of the held cores needs. Not thread-safe.
class CoreTracker {
 public:
  CoreTracker(std::vector<int> online, Policy policy);

  /// Replaces what is known by the runtime's list of live containers; the updates for those
  /// whose cpuset is not what it should be.
  std::vector<CpusetUpdate> Synchronize(std::vector<Workload> live);

  /// What a container being created gets.
  struct Created {
    std::optional<std::string> cpus;    ///< its cpuset; nullopt: leave the runtime's
    std::vector<CpusetUpdate> updates;  ///< other containers, when it holds cores
  };
  Created Create(Workload workload);

  /// The container stopped or went away: forgets it; the updates that give its cores back.
  /// Nothing for a container it does not know (a second call, after a stop and a remove).
  std::vector<CpusetUpdate> Release(const std::string& id);

  /// The runtime is about to set `requested` (a CPU list, "" for no change) as the cpuset of
  /// container `id`: the cpuset to set instead, when the plugin keeps another one on it.
  std::optional<std::string> Reassert(const std::string& id, const std::string& requested) const;

  /// Every held core, ascending.
  std::vector<int> Held() const;
  size_t holders() const;
  size_t confined() const;  ///< non-holders whose cpuset excludes a held core
  const std::vector<int>& online() const { return online_; }
  /// What was noteworthy since the last call (cores named twice, nothing left to share),
  /// one line each, for the log.
  std::vector<std::string> TakeWarnings();

 private:
  struct Known {
    Workload workload;
    std::vector<int> cpus;  ///< current cpuset as a set; the online cores when unset
  };
  std::vector<CpusetUpdate> Rebalance(const std::string& skip);
  std::optional<std::vector<int>> Target(const Holding& holding);

  std::vector<int> online_;
  Policy policy_;
  std::map<std::string, Known> known_;
  std::vector<std::string> warnings_;
};

}  // namespace edgefd::nri
