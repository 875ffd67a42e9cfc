#pragma once

namespace edgefd {

/// Exit codes of edgefd-labeller.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   ///< runtime failure (API server unreachable, ...)
inline constexpr int kExitUsage = 2;     ///< bad usage or bad input (named on stderr)

/// The whole edgefd-labeller command line; main() only calls this.
int RunLabellerCli(int argc, char** argv);

}  // namespace edgefd
