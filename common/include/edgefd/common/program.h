#pragma once

// What every edgefd program shares whether or not it parses a command line: exit codes,
// the version, logging. (The command-line parser itself is edgefd/common/cli.h.)
//
// Exit codes, in every binary:
//   0  success (or --help, --version)
//   1  runtime failure: the input was fine but the job failed (API server unreachable, the
//      kubelet directory missing, a pipeline stage died)
//   2  bad usage or bad input, named on stderr (an unknown flag, a value out of range, a
//      malformed devicetree, rules file or kubeconfig)

#include <signal.h>

#include <string>
#include <string_view>

namespace edgefd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// edgefd's version ("0.1.0").
std::string_view Version();

/// Logs go to stderr as "<program>: <level>: <message>" (stdout carries the program's output:
/// labels, reports, resource lists). `level`: trace, debug, info, warn, error, critical, off.
void SetUpLogging(const std::string& program, const std::string& level);

/// Whether `address` (a --metrics-addr value) asks for an endpoint: not "none", not empty.
bool MetricsEnabled(std::string_view address);

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts later)
/// and returns that set, for a sigwait that turns them into a clean stop. Call it before
/// starting any thread.
sigset_t BlockStopSignals();

}  // namespace edgefd
