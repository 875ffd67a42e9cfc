#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace edgefd::runtime::testing {

/// Runs `edgefd-pipeline ARGS` (a shell-quoted string), returns stdout+stderr and sets
/// `*status` to the exit code (-1 when killed).
inline std::string RunCli(const std::string& args, int* status) {
  std::string cmd = std::string(EDGEFD_PIPELINE_BIN) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

}  // namespace edgefd::runtime::testing
