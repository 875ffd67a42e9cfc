#include "edgefd/testing/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "edgefd/testing/timing.h"

extern char** environ;

namespace edgefd::testing {
namespace {

// This process's environment plus `extra`, as strings that outlive the spawn.
std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Spawns `argv` with stdout and stderr on two new pipes; returns the pid (-1 on failure) and
// sets the read ends.
pid_t Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            int* out_fd, int* err_fd) {
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return -1;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  std::vector<std::string> env = Environment(extra_env);
  std::vector<std::string> args = argv;
  std::vector<char*> envp = Pointers(env), argp = Pointers(args);
  pid_t pid = -1;
  if (posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  *out_fd = out[0];
  *err_fd = err[0];
  return pid;
}

// Appends what is there; returns false once the pipe is closed.
bool ReadSome(int fd, std::string& into) {
  char buf[4096];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) into.append(buf, static_cast<size_t>(n));
  return n > 0 || (n < 0 && errno == EINTR);
}

int ExitCode(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The first child of `pid` (unshare's forked program), or -1 when it has none yet.
pid_t FirstChild(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = -1;
  if (!(in >> child)) return -1;
  return child;
}

}  // namespace

bool CanRunAsPid1() {
  if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0) return false;
  CommandResult r =
      RunCommand({"/usr/bin/unshare", "--pid", "--fork", "--mount-proc", "/bin/true"});
  return r.exit_code == 0;
}

std::vector<std::string> AsPid1(const std::vector<std::string>& argv) {
  std::vector<std::string> out = {"/usr/bin/unshare", "--pid", "--fork", "--mount-proc",
                                  "--kill-child"};
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extra_env) {
  int out_fd = -1, err_fd = -1;
  pid_t pid = Spawn(argv, extra_env, &out_fd, &err_fd);
  if (pid < 0) {
    if (out_fd >= 0) close(out_fd);
    if (err_fd >= 0) close(err_fd);
    throw std::runtime_error("cannot start " + argv.at(0));
  }
  CommandResult result;
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      if (!ReadSome(fds[i].fd, *sinks[i])) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (const pollfd& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = ExitCode(status);
  return result;
}

std::string NeededLibraries(const std::string& binary) {
  CommandResult r;
  try {
    r = RunCommand({"/usr/bin/readelf", "--dynamic", "--wide", binary});
  } catch (const std::exception&) {
    return {};
  }
  std::string needed;
  for (size_t at = 0; (at = r.out.find("(NEEDED)", at)) != std::string::npos; ++at) {
    needed += r.out.substr(at, r.out.find('\n', at) - at) + "\n";
  }
  return needed;
}

std::vector<std::string> CommandLine(const std::string& binary, std::string_view args) {
  std::vector<std::string> out = {binary};
  std::string word;
  bool in_word = false, quoted = false;
  for (char c : args) {
    if (c == '\'') {
      quoted = !quoted;
      in_word = true;
    } else if (c == ' ' && !quoted) {
      if (in_word) out.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) out.push_back(word);
  return out;
}

Child::Child(const std::vector<std::string>& args, const std::vector<std::string>& extra_env) {
  pid_ = Spawn(args, extra_env, &out_fd_, &err_fd_);
}

Child::~Child() {
  if (pid_ > 0) Terminate();
  if (out_fd_ >= 0) close(out_fd_);
  if (err_fd_ >= 0) close(err_fd_);
}

bool Child::WaitFor(const std::function<bool(const std::string&, const std::string&)>& done,
                    std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done(out_, err_)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!out_open_ && !err_open_) return false;  // exited and said nothing more
    pollfd fds[2] = {{out_open_ ? out_fd_ : -1, POLLIN, 0}, {err_open_ ? err_fd_ : -1, POLLIN, 0}};
    if (poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
    if (fds[0].revents != 0) out_open_ = ReadSome(out_fd_, out_);
    if (fds[1].revents != 0) err_open_ = ReadSome(err_fd_, err_);
  }
  return true;
}

int Child::Wait() {
  if (pid_ <= 0) return -1;
  WaitFor([](const std::string&, const std::string&) { return false; }, std::chrono::seconds(30));
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void Child::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int Child::Terminate() {
  if (pid_ > 0) kill(pid_, SIGTERM);
  return Wait();
}

int Child::StopWithin(int signal, std::chrono::milliseconds deadline,
                      std::chrono::milliseconds* took) {
  if (pid_ <= 0) return -1;
  pid_t target = pid_;
  std::ifstream comm("/proc/" + std::to_string(pid_) + "/comm");
  std::string name;
  if (comm >> name && name == "unshare") {
    // The program is unshare's child (PID 1 inside); it forks at once.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while ((target = FirstChild(pid_)) < 0 && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (target < 0) return -1;
  }
  // A pidfd becomes readable when the process exits: no polling.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  const auto t0 = std::chrono::steady_clock::now();
  kill(target, signal);
  pollfd p{pidfd, POLLIN, 0};
  bool exited = pidfd >= 0 && poll(&p, 1, static_cast<int>(Scaled(deadline).count())) == 1;
  if (took != nullptr) {
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  t0);
  }
  if (pidfd >= 0) close(pidfd);
  if (!exited) {
    kill(pid_, SIGKILL);
    if (target != pid_) kill(target, SIGKILL);
  }
  // Collect what it wrote, then its status.
  WaitFor([](const std::string&, const std::string&) { return false; }, std::chrono::seconds(5));
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return exited ? ExitCode(status) : -1;
}

}  // namespace edgefd::testing
