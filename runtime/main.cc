// edgefd-pipeline: thin entry point; everything lives in edgefd_runtime.
#include "edgefd/runtime/cli.h"
#include "edgefd/runtime/threads.h"

int main(int argc, char** argv) {
  // First: it may start this program afresh with idle OpenMP threads sleeping (threads.h).
  edgefd::runtime::DefaultToPassiveWait(argv);
  return edgefd::runtime::PipelineMain(argc, argv);
}
