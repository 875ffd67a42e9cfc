#pragma once

// The `plan` command, shared by `edgefd-pipeline plan` (node files) and `edgefd-plan` (node
// files or the API server: --from-cluster). The stage binary never talks to the API server
// (it runs in every stage pod and links no libcurl), so only edgefd-plan is given a cluster
// reader; edgefd-pipeline's --from-cluster names edgefd-plan instead.

#include <functional>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/planner.h"

namespace CLI {
class App;
}

namespace edgefd::runtime {

/// Exit status of `plan` when the inputs are fine but no placement meets --latency-ms.
inline constexpr int kExitNoPlacement = 3;

/// The flags of `plan`.
struct PlanArgs {
  ModelSpec model;
  std::vector<std::string> nodes;
  std::string node_list;
  bool from_cluster = false;
  PlannerOptions options;
  std::string wire = "float32,float16,int8";
  int naive_stages = 0;
  std::string price;
  bool json = false;
  std::string out;
  ManifestOptions manifests;
};

/// The cluster's nodes for --from-cluster; `skipped` receives "NAME (why)" for each Node left
/// out. An Error when the cluster cannot be read.
using ClusterNodeReader =
    std::function<Result<std::vector<NodeInventory>>(std::vector<std::string>* skipped)>;

/// Adds plan's flags (--model, --nodes, --node-list, --from-cluster, --link-mbps, ...) to `app`.
void AddPlanFlags(CLI::App& app, PlanArgs& args);

/// Runs `plan`: reads the nodes (files, a node list, and with --from-cluster `cluster`; an
/// empty `cluster` refuses --from-cluster, naming edgefd-plan), plans, prints, writes
/// manifests with --out. Nothing is applied to a cluster. Messages start with `program`.
int RunPlan(PlanArgs& args, const std::string& program, const ClusterNodeReader& cluster);

}  // namespace edgefd::runtime
