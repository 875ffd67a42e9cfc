// SIGTERM and SIGINT as every binary receives them (edgefd/common/program.h). Each case runs in
// a child process of its own (a death test): handlers are process-wide. Each body exits 0 when
// the promise held, another code naming the check that failed.
#include "edgefd/common/program.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>

namespace edgefd {
namespace {

using std::chrono::seconds;

void HandledSignalWakesWaitersAndRunsOnStopOnce() {
  InstallStopHandlers();
  std::atomic<int> seen{0}, calls{0};
  {
    OnStop on_stop([&](int signal) {
      seen = signal;
      ++calls;
    });
    raise(SIGINT);
    raise(SIGTERM);  // a second signal changes nothing
    if (!WaitForStop(seconds(5))) _exit(3);
  }
  pollfd p{StopFd(), POLLIN, 0};
  if (poll(&p, 1, 0) != 1) _exit(4);  // stays readable for every poller
  if (seen != SIGINT || calls != 1) _exit(5);
  _exit(StopRequested() && StopSignal() == SIGINT ? 0 : 6);
}

void SignalKeptBlockedAcrossExecArrivesWithTheHandlers() {
  BlockStopSignals();  // what edgefd-labeller does before it execs the agent
  raise(SIGTERM);      // pending, not lost
  if (StopRequested()) _exit(2);
  InstallStopHandlers();
  _exit(StopRequested() && StopSignal() == SIGTERM && WaitForStop(seconds(0)) ? 0 : 3);
}

void WithoutAStopWaitersTimeOutAndOnStopNeverRuns() {
  InstallStopHandlers();
  {
    OnStop on_stop([](int) { _exit(5); });
    if (WaitForStop(std::chrono::milliseconds(20))) _exit(3);
  }
  _exit(StopRequested() ? 4 : 0);
}

TEST(StopSignals, AHandledSignalWakesWaitersAndRunsOnStopOnce) {
  EXPECT_EXIT(HandledSignalWakesWaitersAndRunsOnStopOnce(), ::testing::ExitedWithCode(0), "");
}

TEST(StopSignals, ASignalKeptBlockedAcrossExecArrivesWithTheHandlers) {
  EXPECT_EXIT(SignalKeptBlockedAcrossExecArrivesWithTheHandlers(), ::testing::ExitedWithCode(0),
              "");
}

TEST(StopSignals, WithoutAStopWaitersTimeOutAndOnStopNeverRuns) {
  EXPECT_EXIT(WithoutAStopWaitersTimeOutAndOnStopNeverRuns(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace edgefd
