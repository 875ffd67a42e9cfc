#pragma once

#include <string>

#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::testing {

/// Runs `edgefd-pipeline ARGS` (words split at spaces, '...' quoting), returns stdout then
/// stderr and sets `*status` to the exit code.
inline std::string RunCli(const std::string& args, int* status) {
  CommandResult r = RunCommand(CommandLine(PipelineBin(), args));
  *status = r.exit_code;
  return r.out + r.err;
}

}  // namespace edgefd::testing
