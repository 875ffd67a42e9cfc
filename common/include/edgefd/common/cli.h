#pragma once

// The command line of every edgefd binary: one parser (CLI11), one help layout, one way to
// report bad usage, one meaning per flag and exit code (edgefd/common/program.h), and the
// flag groups more than one binary shares. Only code that parses a command line includes
// this: CLI11 is large, and a daemon should not keep its pages resident.

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/program.h"

namespace edgefd {

/// An App with edgefd's conventions: the program's name and what it does, "Usage:" first in
/// --help, --version, later occurrences of a single-valued flag overriding earlier ones, and
/// `footer` (exit codes, examples) at the end of --help.
void ConfigureApp(CLI::App& app, const std::string& footer = "");

/// Parses `argv` into `app`. Returns an exit code when the program should stop now: 0 after
/// --help or --version (printed on stdout); kExitUsage on bad usage, after one line on stderr
/// naming the flag and the value ("edgefd-labeller: --resync: '0' is not a number of seconds
/// from 1 to 86400") and a pointer to --help.
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv);

/// Validators whose messages name the value: an integer, a number, a number of seconds
/// (fractional allowed), one of a set of words.
CLI::Validator IntegerIn(long long min, long long max);
CLI::Validator NumberIn(double min, double max);
CLI::Validator SecondsIn(double min, double max);
CLI::Validator OneOf(std::vector<std::string> words);

/// The logging flag every binary has: --log-level LEVEL (trace, debug, info, warn, error,
/// off; default info).
void AddLogLevelFlag(CLI::App& app, std::string& level);

/// The metrics flag of every daemon: --metrics-addr ADDR (alias --metrics-address), where
/// /healthz, /readyz and /metrics are served: HOST:PORT, [IPV6]:PORT or :PORT (all
/// interfaces); "none" or "" turns the endpoint off.
CLI::Option* AddMetricsAddrFlag(CLI::App& app, std::string& address);

/// What the Kubernetes flags set: how a daemon reaches the API server, which Node it runs on,
/// and how often it re-reads what it wrote there.
struct KubeFlags {
  std::filesystem::path kubeconfig;  ///< empty: the in-cluster service account
  std::string node_name;             ///< empty: $NODE_NAME, else the hostname
  bool insecure_skip_tls_verify = false;
  bool allow_insecure_http = false;  ///< accept an http:// API server (never sent a token)
  std::chrono::seconds resync{300};  ///< the program's default until the flag says otherwise

  bool operator==(const KubeFlags&) const = default;
};

/// Adds, in the group "Kubernetes", the flags of every binary that talks to the API server
/// (edgefd-labeller, edgefd-deviceplugin --mode dra|both): --kubeconfig FILE, --node-name NAME,
/// --insecure-skip-tls-verify, --allow-insecure-http, --resync SECONDS (whole seconds, 1 to 86400;
/// the default shown is `flags.resync`). `written` says what --resync re-reads and repairs ("the
/// Node's labels").
void AddKubeFlags(CLI::App& app, KubeFlags& flags, const std::string& written);
/// Only how to reach the API server (--kubeconfig, --insecure-skip-tls-verify,
/// --allow-insecure-http), for a program that reads a cluster from outside any Node
/// (edgefd-plan --from-cluster).
void AddKubeConnectionFlags(CLI::App& app, KubeFlags& flags);

}  // namespace edgefd
