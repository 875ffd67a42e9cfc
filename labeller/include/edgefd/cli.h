#pragma once

#include <functional>

namespace edgefd {

struct AgentCliOptions;

/// Exit codes of edgefd-labeller.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;   ///< runtime failure (API server unreachable, ...)
inline constexpr int kExitUsage = 2;     ///< bad usage or bad input (named on stderr)

/// Runs the labelling agent (the command line without --dry-run); returns the exit code.
/// `argv` is the original command line.
using AgentRunner = std::function<int(const AgentCliOptions& options, char** argv)>;

/// The whole edgefd-labeller command line; main() only calls this. Without --dry-run it
/// hands over to `run_agent`.
int RunLabellerCli(int argc, char** argv, const AgentRunner& run_agent);

/// The same, where the agent is `edgefd-labeller-agent` next to this executable, exec'd
/// with the same arguments: the dry run then never loads the HTTP/TLS libraries, which
/// would double its memory.
int RunLabellerCli(int argc, char** argv);

}  // namespace edgefd
