// edgefd-plan: `edgefd-pipeline plan` with --from-cluster, the nodes read from the API server.
// Its own program because it links the kube library (libcurl), which the stage binary that
// runs in every stage pod must not; the planner itself is edgefd_runtime's, shared.
#include <cstdio>

#include "edgefd/common/cli.h"
#include "edgefd/kube/client.h"
#include "edgefd/runtime/plan_command.h"
#include "edgefd/runtime/planner_cluster.h"

namespace {

constexpr char kFooter[] =
    "Reads nodes from files (--nodes, --node-list) or the API server (--from-cluster: Nodes\n"
    "with edgefd's labels and allocatable cores, the edgefd.io ResourceSlices); only GETs are\n"
    "sent: nothing is applied to the cluster (--out DIR writes manifests for kubectl apply -k).\n"
    "Exit codes: 0 planned; 1 the API server could not be read or the manifests not written;\n"
    "2 bad usage or input (no usable node, a calibration of another model, ...); 3 no\n"
    "placement meets --latency-ms.\n"
    "Example: edgefd-plan --model yolo-tiny --from-cluster --link-mbps 100 --out planned/\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace edgefd;
  CLI::App app{"places a model's pipeline stages on a cluster's nodes and predicts its speed",
               "edgefd-plan"};
  ConfigureApp(app, kFooter);
  runtime::PlanArgs args;
  runtime::AddPlanFlags(app, args);
  KubeFlags kube_flags;
  AddKubeConnectionFlags(app, kube_flags);
  std::string log_level = "info";
  AddLogLevelFlag(app, log_level);
  if (auto code = ParseCommandLine(app, argc, argv)) return *code;
  SetUpLogging("edgefd-plan", log_level);
  const kube::ConnectOptions connect{kube_flags.kubeconfig, kube_flags.insecure_skip_tls_verify,
                                     kube_flags.allow_insecure_http};
  runtime::ClusterNodeReader cluster =
      [&connect](std::vector<std::string>* skipped) -> Result<std::vector<runtime::NodeInventory>> {
    std::string server;
    auto client = kube::ConnectToApiServer(connect, &server);
    if (!client) return client.error();
    return runtime::NodesFromCluster(**client, server, skipped);
  };
  return runtime::RunPlan(args, "edgefd-plan", cluster);
}
