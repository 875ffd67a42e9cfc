#pragma once

namespace edgefd::runtime {

/// `edgefd-pipeline run|stage|source|sink|partition ...`; returns the process exit code
/// (edgefd/common/program.h: 0 success, 1 the pipeline failed, 2 bad usage or input).
int PipelineMain(int argc, char** argv);

}  // namespace edgefd::runtime
