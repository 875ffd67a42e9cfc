#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/model.h"

namespace edgefd::runtime {

/// How the partitioner prices layers and links.
struct PartitionOptions {
  int stages = 1;
  /// Per-layer milliseconds (e.g. measured with --profile); empty: FLOPs / `gflops`.
  std::vector<double> layer_ms;
  double gflops = 100.0;      ///< assumed compute rate when no profile is given
  double link_mbps = 1000.0;  ///< bandwidth of each cut, megabits per second (0: free)
};

struct StagePlan {
  int first = 0;  ///< first layer index
  int last = 0;   ///< one past the last layer
  double gflop = 0;
  size_t output_bytes = 0;  ///< bytes this stage sends on per frame (f32)
  double compute_ms = 0;
  double comm_ms = 0;  ///< its output over the link (0 for the last stage)
};

struct PartitionPlan {
  std::vector<StagePlan> stages;
  double bottleneck_ms = 0;  ///< slowest stage, compute + comm
};

/// Splits `model` into options.stages contiguous stages minimising the slowest stage's
/// compute plus the time to send its output over the link (exact dynamic programme).
Result<PartitionPlan> Partition(const Model& model, const PartitionOptions& options);

/// Text table of the plan: layers per stage, GFLOP, output bytes, estimated ms.
std::string FormatPlan(const Model& model, const PartitionPlan& plan);
/// The plan as JSON: the model, per stage its layers, GFLOP, bytes out and estimated ms.
nlohmann::ordered_json PlanJson(const Model& model, const PartitionPlan& plan);

}  // namespace edgefd::runtime
