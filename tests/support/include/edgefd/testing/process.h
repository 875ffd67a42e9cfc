#pragma once

// Child processes for the tests that run the real binaries: run to completion, or keep one
// running and read its output with deadlines (never sleeps).

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
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

/// The libraries `binary` names in its dynamic section (DT_NEEDED), as readelf prints them, one
/// per line; "" when readelf is not available.
std::string NeededLibraries(const std::string& binary);

/// `binary` followed by `args` split at spaces, where '...' quotes a word that holds spaces
/// ("run --model conv --frames 3").
std::vector<std::string> CommandLine(const std::string& binary, std::string_view args);

/// How long a test waits for a binary to exit after SIGTERM or SIGINT. DESIGN.md promises 1 s;
/// the tests allow twice that for a loaded 2-core CI machine and record what it took
/// (Child::StopWithin scales it for emulation, timing.h).
inline constexpr std::chrono::milliseconds kStopDeadline{2000};

/// Whether this machine can run a program as PID 1 of a new PID namespace (root, unshare(1)).
bool CanRunAsPid1();

/// `argv` run as PID 1 of a new PID namespace with its own /proc, as in a container (through
/// `unshare --pid --fork --mount-proc --kill-child`). There the kernel drops any signal the
/// program has no handler for, SIGTERM included. Start it with Child; Child::StopWithin
/// signals the program itself, not unshare.
std::vector<std::string> AsPid1(const std::vector<std::string>& argv);

/// A child process with stdout and stderr captured, killed (SIGTERM) when the object goes away.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args,
                 const std::vector<std::string>& extra_env = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  /// Reads output until `done(out, err)` holds or `timeout` passes; returns whether it held.
  bool WaitFor(const std::function<bool(const std::string&, const std::string&)>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// Waits (30 s at most for its output to end) for the process to exit by itself; returns its
  /// exit code (-1 on a signal).
  int Wait();
  /// Sends `signal` (SIGKILL: a crash) without waiting.
  void Signal(int signal);
  /// SIGTERM, then Wait.
  int Terminate();
  /// Sends `signal` to the program (PID 1 of its namespace when started through AsPid1) and
  /// waits up to `deadline` (the promise; scaled for emulation, timing.h) for it to exit; its
  /// exit code (128 + N after signal N), or -1 when it was still running (it is then killed).
  /// `took`: how long it took.
  int StopWithin(int signal, std::chrono::milliseconds deadline,
                 std::chrono::milliseconds* took = nullptr);

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool out_open_ = true;
  bool err_open_ = true;
  std::string out_;
  std::string err_;
};

}  // namespace edgefd::testing
