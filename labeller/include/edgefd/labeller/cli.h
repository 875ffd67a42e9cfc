#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include "edgefd/common/cli.h"
#include "edgefd/discovery/discovery.h"

namespace edgefd {

/// The default NFD local-source feature file.
inline constexpr char kDefaultNfdFile[] =
    "/etc/kubernetes/node-feature-discovery/features.d/edgefd";

/// What `edgefd-labeller` without `--dry-run` was asked to do.
struct AgentCliOptions {
  DiscoveryOptions discovery;
  bool once = false;                 ///< reconcile once and exit
  std::filesystem::path kubeconfig;  ///< empty: in-cluster config
  std::string node_name;             ///< empty: $NODE_NAME, else the hostname
  std::chrono::seconds resync{300};
  bool insecure_skip_tls_verify = false;
  bool nfd = false;  ///< write the NFD feature file, not the Node
  std::filesystem::path nfd_file = kDefaultNfdFile;
  std::string metrics_addr = ":9402";  ///< "none" or empty: no endpoint
  /// Rescan period of the hardware watcher when udev's netlink monitor is unavailable.
  std::chrono::milliseconds rescan{std::chrono::seconds(30)};
};

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

/// Runs the labeller agent until SIGTERM/SIGINT (or once); returns the exit code. Built into
/// edgefd-labeller-agent only (labeller/src/agent_cli.cc), with the Kubernetes client.
int RunAgentCli(const AgentCliOptions& options);

}  // namespace edgefd
