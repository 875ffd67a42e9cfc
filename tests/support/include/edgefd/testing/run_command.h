#pragma once

#include <string>
#include <vector>

namespace edgefd::testing {

/// What a finished child process left behind.
struct CommandResult {
  int exit_code = -1;  ///< exit status, or 128 + signal number
  std::string out;
  std::string err;
};

/// Runs `argv` (argv[0] is a path) to completion, capturing stdout and stderr, with
/// `extra_env` ("NAME=value") added to this process's environment.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extra_env = {});

}  // namespace edgefd::testing
