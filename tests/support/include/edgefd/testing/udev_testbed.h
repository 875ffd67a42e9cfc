#pragma once

// Test helpers for the udev tests: the umockdev fixture and a child process whose output is
// read with timeouts, never sleeps.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "edgefd/testing/umockdev_testbed.h"

extern char** environ;

namespace edgefd::testing {

/// Skips the test unless umockdev's preload library is active (ctest sets LD_PRELOAD).
#define EDGEFD_REQUIRE_UMOCKDEV()                                                        \
  do {                                                                                   \
    const char* preload = getenv("LD_PRELOAD");                                          \
    if (preload == nullptr || strstr(preload, "libumockdev-preload") == nullptr) {       \
      GTEST_SKIP() << "needs umockdev's preload: run through ctest or umockdev-wrapper"; \
    }                                                                                    \
  } while (0)

/// A child process with stdout and stderr captured.
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    ::close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
  }
  ~Child() {
    if (pid_ > 0) Terminate();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (err_fd_ >= 0) ::close(err_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }

  /// Reads output until `done(out, err)` holds or `timeout` passes; returns whether it held.
  bool WaitFor(const std::function<bool(const std::string&, const std::string&)>& done,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done(out_, err_)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      if (!out_open_ && !err_open_) return false;  // exited and said nothing more
      pollfd fds[2] = {{out_open_ ? out_fd_ : -1, POLLIN, 0},
                       {err_open_ ? err_fd_ : -1, POLLIN, 0}};
      if (::poll(fds, 2, static_cast<int>(left.count())) <= 0) continue;
      if (fds[0].revents != 0) out_open_ = Read(out_fd_, out_);
      if (fds[1].revents != 0) err_open_ = Read(err_fd_, err_);
    }
    return true;
  }

  /// Waits for the process to exit by itself; returns its exit code (-1 on a signal).
  int Wait() {
    WaitFor([](const std::string&, const std::string&) { return false; }, std::chrono::seconds(30));
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  /// SIGTERM, then waits; returns the exit code.
  int Terminate() {
    ::kill(pid_, SIGTERM);
    return Wait();
  }

 private:
  // Appends what is there; returns false once the pipe is closed.
  static bool Read(int fd, std::string& into) {
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) into.append(buf, static_cast<size_t>(n));
    return n > 0 || (n < 0 && errno == EINTR);
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool out_open_ = true;
  bool err_open_ = true;
  std::string out_;
  std::string err_;
};

/// A fixture with a testbed holding host.umockdev (PCI host bridge, xHCI, USB root hub).
class HostTestbedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EDGEFD_REQUIRE_UMOCKDEV();
    tb_ = std::make_unique<Testbed>();
    ASSERT_TRUE(tb_->Plug("host.umockdev"));
  }
  std::unique_ptr<Testbed> tb_;
};

/// A gtest parameter name from a testdata file name ("ncs2-pair.umockdev" -> "ncs2_pair").
inline std::string FileParamName(const char* file) {
  std::string name = file != nullptr ? file : "host_only";
  name = name.substr(0, name.find('.'));
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

/// Writes a devicetree node in the kernel's directory form (compatible, optional status).
inline void WriteDtNode(const std::filesystem::path& dir,
                        const std::vector<std::string>& compatible, const char* status = nullptr) {
  std::filesystem::create_directories(dir);
  std::string value;
  for (const std::string& c : compatible) value += c + '\0';
  std::ofstream(dir / "compatible", std::ios::binary) << value;
  if (status != nullptr) std::ofstream(dir / "status", std::ios::binary) << status << '\0';
}

}  // namespace edgefd::testing
