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

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

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

// SIGTERM and SIGINT, the same way in every binary: a handler records the stop (so the
// signals arrive even as PID 1, where the kernel drops a signal that has no handler) and makes
// StopFd() readable; each program's loops wait on that fd (or StopRequested()) and wind down:
// end-of-stream downstream, sockets and rings removed, exit 0 within a second.

/// Installs the handlers (SA_RESTART), then unblocks SIGTERM and SIGINT, so a signal a parent
/// kept blocked across exec (edgefd-labeller before it becomes the agent) is delivered now.
/// Call first thing in main; idempotent.
void InstallStopHandlers();

/// Blocks SIGTERM and SIGINT in the calling thread (they stay pending, and are kept blocked
/// across exec); the program exec'd calls InstallStopHandlers to receive them.
void BlockStopSignals();

/// Set once SIGTERM or SIGINT arrived.
const std::atomic<bool>& StopRequested();

/// Which signal asked to stop (SIGTERM, SIGINT); 0 while none did.
int StopSignal();

/// A file descriptor that becomes readable when a stop is requested, and stays readable;
/// poll it beside the program's own. -1 before InstallStopHandlers.
int StopFd();

/// Waits up to `timeout` (forever when negative) for a stop; true when one was requested.
bool WaitForStop(std::chrono::milliseconds timeout = std::chrono::milliseconds(-1));

/// Runs `on_stop` on a thread of its own when a stop is requested (once), for what cannot poll
/// StopFd itself: cancelling a request in flight, aborting a blocked send. The destructor ends
/// the thread when no stop came; it never runs `on_stop` after that.
class OnStop {
 public:
  explicit OnStop(std::function<void(int signal)> on_stop);
  ~OnStop();
  OnStop(const OnStop&) = delete;
  OnStop& operator=(const OnStop&) = delete;

 private:
  int done_fd_ = -1;
  std::thread thread_;
};

}  // namespace edgefd
