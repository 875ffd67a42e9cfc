#pragma once

namespace edgefd::runtime {

/// `edgefd-pipeline run|stage|source|sink|partition ...`; returns the process exit code
/// (0 success, 2 bad usage or input, 3 the pipeline failed).
int PipelineMain(int argc, char** argv);

}  // namespace edgefd::runtime
