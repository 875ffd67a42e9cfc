// edgefd-pipeline: thin entry point; everything lives in edgefd_runtime.
#include "edgefd/runtime/cli.h"

int main(int argc, char** argv) { return edgefd::runtime::PipelineMain(argc, argv); }
