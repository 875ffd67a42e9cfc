// edgefd-labeller-agent: the labeller with the Kubernetes API client linked in.
// edgefd-labeller execs it for everything but --dry-run.
#include "edgefd/agent/reconcile.h"
#include "edgefd/labeller/cli.h"

int main(int argc, char** argv) {
  return edgefd::RunLabellerCli(argc, argv, [](const edgefd::AgentCliOptions& options, char**) {
    return edgefd::RunAgentCli(options);
  });
}
