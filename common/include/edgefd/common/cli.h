#pragma once

// The command line of every edgefd binary: one parser (CLI11), one help layout, one way to
// report bad usage, one meaning per flag and exit code, and the flag groups more than one
// binary shares.
//
// Exit codes, in every binary:
//   0  success (or --help, --version)
//   1  runtime failure: the input was fine but the job failed (API server unreachable, the
//      kubelet directory missing, a pipeline stage died)
//   2  bad usage or bad input, named on stderr (an unknown flag, a value out of range, a
//      malformed devicetree, rules file or kubeconfig)

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgefd {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

/// edgefd's version ("0.1.0").
std::string_view Version();

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
/// Logs go to stderr as "<program>: <level>: <message>" (stdout carries the program's output:
/// labels, reports, resource lists).
void SetUpLogging(const std::string& program, const std::string& level);

/// The metrics flag of every daemon: --metrics-addr ADDR (alias --metrics-address), where
/// /healthz, /readyz and /metrics are served: HOST:PORT, [IPV6]:PORT or :PORT (all
/// interfaces); "none" or "" turns the endpoint off.
CLI::Option* AddMetricsAddrFlag(CLI::App& app, std::string& address);
/// Whether `address` (a --metrics-addr value) asks for an endpoint.
bool MetricsEnabled(std::string_view address);

}  // namespace edgefd
