#include "edgefd/runtime/partition.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "edgefd/common/json.h"
#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

Result<PartitionPlan> Partition(const Model& model, const PartitionOptions& o) {
  const int n = int(model.layers.size());
  if (o.stages < 1 || o.stages > n || o.stages > kMaxStages) {
    return Error{"--stages " + std::to_string(o.stages) + ": " + model.name + " has " +
                 std::to_string(n) + " layers; use 1.." + std::to_string(std::min(n, kMaxStages))};
  }
  if (!o.layer_ms.empty() && int(o.layer_ms.size()) != n) {
    return Error{"profile has " + std::to_string(o.layer_ms.size()) + " layers, model " +
                 model.name + " has " + std::to_string(n)};
  }
  if (o.gflops <= 0 || o.link_mbps < 0) {
    return Error{"--gflops must be > 0 and --link-mbps >= 0"};
  }
  std::vector<double> prefix(n + 1, 0.0);
  for (int i = 0; i < n; ++i) {
    double ms = o.layer_ms.empty() ? model.layers[i].Flops() / (o.gflops * 1e6) : o.layer_ms[i];
    prefix[i + 1] = prefix[i] + ms;
  }
  auto comm_ms = [&](int last) {
    if (last >= n || o.link_mbps == 0) return 0.0;
    return double(model.layers[last - 1].out.Bytes()) * 8.0 / (o.link_mbps * 1e3);
  };
  auto cost = [&](int first, int last) { return prefix[last] - prefix[first] + comm_ms(last); };
  const double inf = std::numeric_limits<double>::infinity();
  // best[k][j]: smallest bottleneck splitting layers [0, j) into k stages.
  std::vector<std::vector<double>> best(o.stages + 1, std::vector<double>(n + 1, inf));
  std::vector<std::vector<int>> cut(o.stages + 1, std::vector<int>(n + 1, 0));
  best[0][0] = 0;
  for (int k = 1; k <= o.stages; ++k) {
    for (int j = k; j <= n; ++j) {
      for (int i = k - 1; i < j; ++i) {
        double b = std::max(best[k - 1][i], cost(i, j));
        if (b < best[k][j]) {
          best[k][j] = b;
          cut[k][j] = i;
        }
      }
    }
  }
  PartitionPlan plan;
  plan.bottleneck_ms = best[o.stages][n];
  int j = n;
  for (int k = o.stages; k >= 1; --k) {
    StagePlan s;
    s.first = cut[k][j];
    s.last = j;
    s.gflop = model.Flops(s.first, s.last) / 1e9;
    s.output_bytes = model.layers[s.last - 1].out.Bytes();
    s.compute_ms = prefix[s.last] - prefix[s.first];
    s.comm_ms = comm_ms(s.last);
    plan.stages.insert(plan.stages.begin(), s);
    j = s.first;
  }
  return plan;
}

std::string FormatPlan(const Model& model, const PartitionPlan& plan) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-6s %-24s %9s %13s %11s %9s\n", "stage", "layers", "GFLOP",
                "output bytes", "compute ms", "comm ms");
  out += line;
  for (size_t i = 0; i < plan.stages.size(); ++i) {
    const StagePlan& s = plan.stages[i];
    std::string layers = model.layers[s.first].name;
    if (s.last - s.first > 1) layers += ".." + model.layers[s.last - 1].name;
    layers += " (" + std::to_string(s.last - s.first) + ")";
    std::snprintf(line, sizeof line, "%-6zu %-24s %9.3f %13zu %11.3f %9.3f\n", i, layers.c_str(),
                  s.gflop, s.output_bytes, s.compute_ms, s.comm_ms);
    out += line;
  }
  std::snprintf(line, sizeof line, "bottleneck %.3f ms/frame (%.1f frames/s)\n", plan.bottleneck_ms,
                plan.bottleneck_ms > 0 ? 1000.0 / plan.bottleneck_ms : 0.0);
  out += line;
  return out;
}

Json PlanJson(const Model& model, const PartitionPlan& plan) {
  Json stages = Json::array();
  for (const StagePlan& s : plan.stages) {
    Json layers = Json::array();
    for (int l = s.first; l < s.last; ++l) layers.push_back(model.layers[l].name);
    stages.push_back({{"first_layer", s.first},
                      {"last_layer", s.last - 1},
                      {"gflop", RoundTo(s.gflop, 6)},
                      {"output_bytes", s.output_bytes},
                      {"compute_ms", RoundTo(s.compute_ms, 4)},
                      {"comm_ms", RoundTo(s.comm_ms, 4)},
                      {"layers", std::move(layers)}});
  }
  return {{"model", model.name},
          {"stages", std::move(stages)},
          {"bottleneck_ms", RoundTo(plan.bottleneck_ms, 4)}};
}

}  // namespace edgefd::runtime
