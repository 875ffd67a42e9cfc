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
  /// SIGTERM, then waits at most `limit` for the process to exit: its exit code, or -1 when it
  /// had to be killed (SIGKILL) because it did not stop in time.
  int Stop(std::chrono::milliseconds limit);

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
