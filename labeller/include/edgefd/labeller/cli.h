#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"
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
  bool allow_insecure_http = false;
  /// --once: one deadline for the whole run, every attempt and wait included.
  std::chrono::seconds once_timeout{60};
  bool nfd = false;  ///< write the NFD feature file, not the Node
  /// Publish an NFD NodeFeature object in the pod's namespace (POD_NAMESPACE) and let
  /// nfd-master label the Node (--output nodefeature).
  bool nodefeature = false;
  std::filesystem::path nfd_file = kDefaultNfdFile;
  std::string metrics_addr = ":9402";  ///< "none" or empty: no endpoint
  /// Rescan period of the hardware watcher when udev's netlink monitor is unavailable; 0: never.
  std::chrono::milliseconds rescan{std::chrono::seconds(30)};
  std::string log_level = "info";
  /// `--calibration FILE`: publish `edgefd.io/cpu.<class>.gflops` from it (re-read on every
  /// reconcile); empty: none.
  std::filesystem::path calibration;
  /// --prune: remove what edgefd set (the labels `edgefd.io/owned-labels` lists, under
  /// edgefd's prefixes only, and the annotation), then exit. The chart's pre-delete hook.
  bool prune = false;
  bool all_nodes = false;  ///< --prune --all-nodes: every Node, not only this one
  /// --prune --stop-daemonset NAME: first delete that DaemonSet of this pod's namespace in the
  /// foreground and wait until it is gone, so its pods stop while their accounts still exist
  /// (the DRA driver's --daemonset then removes its CDI specs). The chart's hook names
  /// edgefd-dra.
  std::vector<std::string> stop_daemonsets;

  bool operator==(const AgentCliOptions&) const = default;
};

/// The whole edgefd-labeller command line; main() only calls this. Everything but the dry
/// run is the agent's: it execs `edgefd-labeller-agent` (installed next to this executable)
/// with the parsed options as its one argument (AgentOptionsToJson). So the dry run never
/// loads the HTTP/TLS libraries, and the resident agent never holds the command-line parser
/// (each would cost it hundreds of KiB; bench/labeller dryrun_rss and reconcile_bench).
int RunLabellerCli(int argc, char** argv);

/// The agent's options as edgefd-labeller hands them to edgefd-labeller-agent: one JSON
/// document. An Error when a value cannot travel as JSON (a path that is not UTF-8).
Result<std::string> AgentOptionsToJson(const AgentCliOptions& options);
/// Reads back what AgentOptionsToJson wrote.
Result<AgentCliOptions> AgentOptionsFromJson(std::string_view json);

/// edgefd-labeller-agent's main: `argv[1]` is AgentOptionsToJson's output. Runs the labeller
/// agent until SIGTERM/SIGINT (or once); returns the exit code. Built into
/// edgefd-labeller-agent only (labeller/src/agent_cli.cc), with the Kubernetes client.
int RunAgentMain(int argc, char** argv);
/// The agent itself, from parsed options.
int RunAgentCli(const AgentCliOptions& options);

}  // namespace edgefd
