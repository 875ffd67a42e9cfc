// Real processes: a source and a stage process over gRPC on unix sockets, the test as sink.
// Killing the stage makes the source report it and, when a new stage comes up at the same
// address, reconnect by itself.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "edgefd/runtime/model.h"
#include "edgefd/runtime/transport.h"
#include "temp_dir.h"

extern char** environ;

namespace edgefd::runtime {
namespace {

using std::chrono::seconds;
using testing::TempDir;

/// A child process whose stderr the test reads; killed by pid when the test ends.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    args.insert(args.begin(), EDGEFD_PIPELINE_BIN);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    err_ = fds[0];
  }
  ~Child() {
    Kill(SIGTERM);
    close(err_);
  }
  void Kill(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  /// Reads stderr until `text` shows up or `limit` passes.
  bool WaitForOutput(const std::string& text, seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (output_.find(text) == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, int(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(err_, buf, sizeof buf);
      if (n <= 0) return false;
      output_.append(buf, size_t(n));
    }
    return true;
  }
  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
  std::string output_;
};

TEST(Processes, SourceReportsADeadStageAndReconnectsToItsReplacement) {
  TempDir tmp;
  const std::string& dir = tmp.path();
  auto model = MakeConvModel({64, 48, 1});
  ASSERT_TRUE(model.ok());
  auto sink = ListenGrpc("unix:" + dir + "/sink.sock", model->Output(), Policy::kLatest);
  ASSERT_TRUE(sink.ok()) << sink.error().message;
  const std::vector<std::string> stage_args = {"stage",
                                               "--model",
                                               "conv",
                                               "--width",
                                               "64",
                                               "--height",
                                               "48",
                                               "--stages",
                                               "1",
                                               "--index",
                                               "0",
                                               "--listen",
                                               "unix:" + dir + "/s0.sock",
                                               "--next",
                                               "unix:" + dir + "/sink.sock"};
  auto stage = std::make_unique<Child>(stage_args);
  Child source({"source", "--model", "conv", "--width", "64", "--height", "48", "--fps", "200",
                "--frames", "1000000", "--next", "unix:" + dir + "/s0.sock"});

  FrameMeta meta;
  const float* data = nullptr;
  ASSERT_EQ((*sink)->Next(&meta, &data, seconds(20)), ReadResult::kFrame);
  EXPECT_EQ(meta.stamp_count, 1u);

  stage->Kill(SIGKILL);
  ASSERT_TRUE(source.WaitForOutput("stream broke", seconds(20))) << source.output();
  EXPECT_NE(source.output().find(dir + "/s0.sock"), std::string::npos);
  // Whatever was in flight drains; then nothing until a stage is back.
  while ((*sink)->Next(&meta, &data, std::chrono::milliseconds(300)) == ReadResult::kFrame) {
  }
  uint64_t before = meta.seq;

  stage = std::make_unique<Child>(stage_args);
  ASSERT_EQ((*sink)->Next(&meta, &data, seconds(20)), ReadResult::kFrame)
      << "no frames after the stage came back:\n"
      << source.output();
  EXPECT_GT(meta.seq, before);
  stage.reset();
}

}  // namespace
}  // namespace edgefd::runtime
