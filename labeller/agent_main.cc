// edgefd-labeller-agent: the labeller with the Kubernetes API client linked in.
// edgefd-labeller execs it, with the options it parsed, for everything but --dry-run.
#include "edgefd/labeller/cli.h"

int main(int argc, char** argv) { return edgefd::RunAgentMain(argc, argv); }
