#include "edgefd/deviceplugin/preferred.h"

#include <algorithm>
#include <map>
#include <set>

namespace edgefd::deviceplugin {

std::vector<std::string> PreferredAllocation(const ResourceSnapshot& snapshot,
                                             const std::vector<std::string>& available,
                                             const std::vector<std::string>& must_include,
                                             int size) {
  std::vector<std::string> picked;
  std::set<std::string> taken;
  for (const std::string& id : must_include) {
    if (taken.insert(id).second) picked.push_back(id);
  }
  auto group_of = [&](const std::string& id) {
    const PluginDevice* d = snapshot.Find(id);
    return d != nullptr ? d->group : -1;
  };

  // Free devices per group, lowest IDs first.
  std::map<int, std::vector<std::string>> free;
  for (const std::string& id : available) {
    if (taken.contains(id)) continue;
    const PluginDevice* d = snapshot.Find(id);
    // Never a device someone else holds, even if the kubelet has not seen it withdrawn yet.
    if (d != nullptr && (!d->healthy || !d->held_by.empty())) continue;
    free[group_of(id)].push_back(id);
  }
  for (auto& [g, ids] : free) {
    std::sort(ids.begin(), ids.end(),
              [](const std::string& a, const std::string& b) { return NaturalLess(a, b); });
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  }
  auto take = [&](int group, size_t n) {
    std::vector<std::string>& ids = free[group];
    n = std::min(n, ids.size());
    for (size_t i = 0; i < n; ++i) picked.push_back(ids[i]);
    ids.erase(ids.begin(), ids.begin() + static_cast<long>(n));
  };
  auto remaining = [&] {
    return size > static_cast<int>(picked.size()) ? static_cast<size_t>(size) - picked.size()
                                                  : size_t{0};
  };

  // 1. Stay in the groups that must-include devices already pin.
  std::set<int> pinned;
  for (const std::string& id : must_include) pinned.insert(group_of(id));
  for (int g : pinned) {
    if (remaining() == 0) break;
    take(g, remaining());
  }
  // 2. One group that holds the rest alone (best fit), else the largest group, repeated:
  //    largest-first needs the fewest groups.
  while (remaining() > 0) {
    int best = 0;
    size_t best_size = 0;
    bool fits = false;
    for (const auto& [g, ids] : free) {
      if (ids.empty()) continue;
      const bool g_fits = ids.size() >= remaining();
      if (best_size == 0 || (g_fits && (!fits || ids.size() < best_size)) ||
          (!g_fits && !fits && ids.size() > best_size)) {
        best = g;
        best_size = ids.size();
        fits = g_fits;
      }
    }
    if (best_size == 0) break;  // nothing left to give
    take(best, remaining());
  }
  return picked;
}

}  // namespace edgefd::deviceplugin
