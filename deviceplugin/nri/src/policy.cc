#include "edgefd/nri/policy.h"

#include <fmt/format.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "edgefd/common/allocation.h"
#include "edgefd/common/cpu_list.h"

namespace edgefd::nri {
namespace {

std::vector<int> Difference(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<int> Intersection(const std::vector<int>& a, const std::vector<int>& b) {
  std::vector<int> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

std::optional<Policy> ParsePolicy(std::string_view word) {
  if (word == "exclusive") return Policy::kExclusive;
  if (word == "shared") return Policy::kShared;
  return std::nullopt;
}

Holding ReadHolding(const std::vector<std::string>& env, const std::vector<int>& online) {
  Holding holding;
  Result<AllocationEnv> parsed = ParseAllocationEnv(env);
  if (!parsed) {
    holding.env = parsed.error();
    return holding;
  }
  std::set<int> named;
  for (const auto& [cls, cpus] : parsed->cpus) named.insert(cpus.begin(), cpus.end());
  for (int cpu : named) {
    (std::binary_search(online.begin(), online.end(), cpu) ? holding.cpus : holding.offline)
        .push_back(cpu);
  }
  return holding;
}

void CheckAgainstRecord(Holding& holding, const ContainerRef& ref,
                        const Result<HeldCores>& record) {
  if (holding.cpus.empty()) return;
  if (!record) {
    holding.record = record.error();
    holding.unheld = std::move(holding.cpus);
    holding.cpus.clear();
    return;
  }
  auto it = record->find(ref);
  static const std::vector<int> kNone;
  const std::vector<int>& held = it == record->end() ? kNone : it->second;
  holding.unheld = Difference(holding.cpus, held);
  holding.cpus = Intersection(holding.cpus, held);
}

std::optional<std::vector<int>> TargetCpus(const Holding& holding, const std::vector<int>& held,
                                           const std::vector<int>& online, Policy policy) {
  if (holding.holder()) return holding.cpus;
  if (policy == Policy::kShared) return std::nullopt;
  std::vector<int> rest = Difference(online, held);
  if (rest.empty()) return std::nullopt;
  return rest;
}

CoreTracker::CoreTracker(std::vector<int> online, Policy policy)
    : online_(std::move(online)), policy_(policy) {
  std::sort(online_.begin(), online_.end());
}

std::vector<int> CoreTracker::Held() const {
  std::set<int> held;
  for (const auto& [id, known] : known_) {
    held.insert(known.workload.holding.cpus.begin(), known.workload.holding.cpus.end());
  }
  return {held.begin(), held.end()};
}

size_t CoreTracker::holders() const {
  return std::count_if(known_.begin(), known_.end(),
                       [](const auto& kv) { return kv.second.workload.holding.holder(); });
}

size_t CoreTracker::confined() const {
  return std::count_if(known_.begin(), known_.end(), [&](const auto& kv) {
    return !kv.second.workload.holding.holder() && kv.second.cpus != online_;
  });
}

std::vector<std::string> CoreTracker::TakeWarnings() { return std::exchange(warnings_, {}); }

std::optional<std::vector<int>> CoreTracker::Target(const Holding& holding) {
  const std::vector<int> held = Held();
  std::optional<std::vector<int>> target = TargetCpus(holding, held, online_, policy_);
  if (!target && !holding.holder() && policy_ == Policy::kExclusive) {
    warnings_.push_back(fmt::format(
        "every online core ({}) is held: containers without edgefd cores keep their cpuset",
        FormatCpuList(online_)));
  }
  return target;
}

std::vector<CpusetUpdate> CoreTracker::Rebalance(const std::string& skip) {
  std::vector<CpusetUpdate> updates;
  for (auto& [id, known] : known_) {
    if (id == skip) continue;
    std::optional<std::vector<int>> target = Target(known.workload.holding);
    if (!target || *target == known.cpus) continue;
    known.cpus = *target;
    updates.push_back({id, FormatCpuList(*target)});
  }
  // One "nothing left" line per change, not one per container.
  std::sort(warnings_.begin(), warnings_.end());
  warnings_.erase(std::unique(warnings_.begin(), warnings_.end()), warnings_.end());
  return updates;
}

std::vector<CpusetUpdate> CoreTracker::Synchronize(std::vector<Workload> live) {
  known_.clear();
  for (Workload& w : live) {
    std::optional<std::vector<int>> cpus = ParseCpuList(w.cpus);
    std::vector<int> current = (cpus && !cpus->empty()) ? *cpus : online_;
    std::string id = w.id;
    known_[id] = Known{std::move(w), std::move(current)};
  }
  return Rebalance("");
}

CoreTracker::Created CoreTracker::Create(Workload workload) {
  const std::string id = workload.id;
  if (workload.holding.holder()) {
    const std::vector<int> shared = Intersection(workload.holding.cpus, Held());
    if (!shared.empty()) {
      warnings_.push_back(fmt::format("{} holds core(s) {} that another container holds too",
                                      workload.name, FormatCpuList(shared)));
    }
  }
  std::optional<std::vector<int>> parsed = ParseCpuList(workload.cpus);
  std::vector<int> current = (parsed && !parsed->empty()) ? *parsed : online_;
  Known& known = known_[id] = Known{std::move(workload), std::move(current)};
  Created created;
  created.updates = Rebalance(id);
  std::optional<std::vector<int>> target = Target(known.workload.holding);
  if (target && (known.workload.holding.holder() || *target != known.cpus)) {
    known.cpus = *target;
    created.cpus = FormatCpuList(*target);
  }
  return created;
}

std::vector<CpusetUpdate> CoreTracker::Release(const std::string& id) {
  auto it = known_.find(id);
  if (it == known_.end()) return {};
  const bool held = it->second.workload.holding.holder();
  known_.erase(it);
  if (!held) return {};
  return Rebalance("");
}

std::optional<std::string> CoreTracker::Reassert(const std::string& id,
                                                 const std::string& requested) const {
  auto it = known_.find(id);
  if (it == known_.end() || requested.empty()) return std::nullopt;
  std::optional<std::vector<int>> target =
      TargetCpus(it->second.workload.holding, Held(), online_, policy_);
  if (!target || ParseCpuList(requested) == target) return std::nullopt;
  return FormatCpuList(*target);
}

}  // namespace edgefd::nri
