#include "edgefd/nri/record.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "edgefd/common/allocation.h"

namespace edgefd::nri {
namespace {

constexpr std::string_view kResourcePrefix = "edgefd.io/";

// The core a device plugin core device names ("cpu4" -> 4); -1 for anything else.
int CoreOf(std::string_view resource, std::string_view id) {
  if (!resource.starts_with(kResourcePrefix)) return -1;
  if (CoreClassOf(resource.substr(kResourcePrefix.size())).empty()) return -1;
  if (!id.starts_with("cpu")) return -1;
  id.remove_prefix(3);
  int cpu = -1;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), cpu);
  if (ec != std::errc() || end != id.data() + id.size() || cpu < 0) return -1;
  return cpu;
}

}  // namespace

HeldCores HeldCoresFrom(const deviceplugin::Assignments& assigned,
                        const deviceplugin::PreparedClaims& claims) {
  std::map<ContainerRef, std::set<int>> held;
  for (const deviceplugin::AssignedDevice& d : assigned.devices) {
    const int cpu = CoreOf(d.resource, d.id);
    if (cpu >= 0) held[{d.ns, d.pod, d.container}].insert(cpu);
  }
  // Claims by namespace and name (the checkpoint keys them by UID).
  std::map<std::pair<std::string, std::string>, const deviceplugin::PreparedClaim*> by_name;
  for (const auto& [uid, claim] : claims) by_name[{claim.ns, claim.name}] = &claim;
  for (const deviceplugin::AssignedClaim& c : assigned.claims) {
    auto it = by_name.find({c.ns, c.claim});
    if (it == by_name.end()) continue;
    Result<AllocationEnv> env = ParseAllocationEnv(it->second->env);
    if (!env) continue;  // the driver wrote it; a broken one confirms nothing
    std::set<int>& cpus = held[{c.ns, c.pod, c.container}];
    for (const auto& [cls, list] : env->cpus) cpus.insert(list.begin(), list.end());
  }
  HeldCores out;
  for (auto& [ref, cpus] : held) out[ref] = {cpus.begin(), cpus.end()};
  return out;
}

NodeAllocationRecord::NodeAllocationRecord(std::filesystem::path pod_resources_socket,
                                           std::filesystem::path dra_checkpoint,
                                           std::chrono::milliseconds deadline)
    : client_(std::move(pod_resources_socket), deadline), checkpoint_(std::move(dra_checkpoint)) {}

Result<HeldCores> NodeAllocationRecord::Read() {
  Result<deviceplugin::Assignments> assigned = client_.ListAll();
  if (!assigned) return assigned.error();
  deviceplugin::PreparedClaims claims;
  if (!assigned->claims.empty()) {
    Result<deviceplugin::PreparedClaims> loaded = checkpoint_.Load();
    if (!loaded) {
      return Error{"the DRA checkpoint: " + loaded.error().message, loaded.error().code};
    }
    claims = std::move(*loaded);
  }
  return HeldCoresFrom(*assigned, claims);
}

}  // namespace edgefd::nri
