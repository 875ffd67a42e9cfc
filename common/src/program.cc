#include "edgefd/common/program.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace edgefd {

std::string_view Version() { return EDGEFD_VERSION; }

void SetUpLogging(const std::string& program, const std::string& level) {
  auto logger = spdlog::stderr_color_mt(program);
  logger->set_pattern("%n: %^%l%$: %v");
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

bool MetricsEnabled(std::string_view address) { return !address.empty() && address != "none"; }

namespace {

std::atomic<bool> g_stop_requested{false};
std::atomic<int> g_stop_signal{0};
std::atomic<int> g_stop_fd{-1};

sigset_t StopSignalSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Async-signal-safe: atomics and write(2) only.
void OnStopSignal(int signal) {
  int saved_errno = errno;
  int expected = 0;
  g_stop_signal.compare_exchange_strong(expected, signal);
  g_stop_requested.store(true);
  if (int fd = g_stop_fd.load(); fd >= 0) {
    uint64_t one = 1;
    ssize_t n = ::write(fd, &one, sizeof one);
    (void)n;  // the eventfd is never read, so it cannot overflow in a process's lifetime
  }
  errno = saved_errno;
}

// Waits for `fd` (and the stop fd) to become readable; which one, or neither on a timeout.
int PollStop(int other_fd, std::chrono::milliseconds timeout) {
  const int stop_fd = StopFd();
  pollfd fds[2] = {{stop_fd, POLLIN, 0}, {other_fd, POLLIN, 0}};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int ms = -1;
    if (timeout.count() >= 0) {
      ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                   std::chrono::steady_clock::now())
                 .count()));
    }
    int n = ::poll(fds, other_fd >= 0 ? 2 : 1, ms);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    return fds[0].revents != 0 ? stop_fd : other_fd;
  }
}

}  // namespace

void InstallStopHandlers() {
  if (g_stop_fd.load() < 0) {
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int expected = -1;
    if (fd >= 0 && !g_stop_fd.compare_exchange_strong(expected, fd)) ::close(fd);
  }
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  // A stop that arrived meanwhile (blocked across exec) is handled as the mask drops.
  const sigset_t set = StopSignalSet();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  // Already asked to stop before the fd existed: make it readable now.
  if (g_stop_requested.load()) OnStopSignal(g_stop_signal.load());
}

void BlockStopSignals() {
  const sigset_t set = StopSignalSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

const std::atomic<bool>& StopRequested() { return g_stop_requested; }

int StopSignal() { return g_stop_signal.load(); }

int StopFd() { return g_stop_fd.load(); }

bool WaitForStop(std::chrono::milliseconds timeout) {
  if (g_stop_requested.load()) return true;
  if (StopFd() < 0) {
    if (timeout.count() > 0) std::this_thread::sleep_for(timeout);
    return g_stop_requested.load();
  }
  return PollStop(-1, timeout) >= 0;
}

OnStop::OnStop(std::function<void(int signal)> on_stop) : done_fd_(::eventfd(0, EFD_CLOEXEC)) {
  thread_ = std::thread([this, on_stop = std::move(on_stop)] {
    if (PollStop(done_fd_, std::chrono::milliseconds(-1)) == StopFd() && StopFd() >= 0) {
      on_stop(StopSignal());
    }
  });
}

OnStop::~OnStop() {
  uint64_t one = 1;
  ssize_t n = ::write(done_fd_, &one, sizeof one);
  (void)n;  // written once
  thread_.join();
  ::close(done_fd_);
}

}  // namespace edgefd
