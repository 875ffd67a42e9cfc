// Real processes: a source and a stage process over gRPC on unix sockets, the test as sink.
// Killing the stage makes the source report it and, when a new stage comes up at the same
// address, reconnect by itself.
#include "edgefd/testing/process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/runtime/model.h"
#include "edgefd/runtime/transport.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"

namespace edgefd::runtime {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::TempDir;

// edgefd-pipeline with `args`, killed (SIGTERM) when the test ends.
std::unique_ptr<Child> Pipeline(std::vector<std::string> args) {
  args.insert(args.begin(), testing::PipelineBin());
  return std::make_unique<Child>(args);
}

// Waits until the child's stderr says `text`.
bool Says(Child& child, const std::string& text, seconds limit) {
  return child.WaitFor([&](const std::string&,
                           const std::string& err) { return err.find(text) != std::string::npos; },
                       limit);
}

TEST(Processes, SourceReportsADeadStageAndReconnectsToItsReplacement) {
  TempDir tmp;
  const std::string dir = tmp.path().string();
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
  auto stage = Pipeline(stage_args);
  auto source = Pipeline({"source", "--model", "conv", "--width", "64", "--height", "48", "--fps",
                          "200", "--frames", "1000000", "--next", "unix:" + dir + "/s0.sock"});

  FrameMeta meta;
  const float* data = nullptr;
  ASSERT_EQ((*sink)->Next(&meta, &data, seconds(20)), ReadResult::kFrame);
  EXPECT_EQ(meta.stage_count, 1u);

  stage->Signal(SIGKILL);
  stage->Wait();
  ASSERT_TRUE(Says(*source, "stream broke", seconds(20))) << source->err();
  EXPECT_NE(source->err().find(dir + "/s0.sock"), std::string::npos);
  // Whatever was in flight drains; then nothing until a stage is back.
  while ((*sink)->Next(&meta, &data, std::chrono::milliseconds(300)) == ReadResult::kFrame) {
  }
  uint64_t before = meta.seq;

  stage = Pipeline(stage_args);
  ASSERT_EQ((*sink)->Next(&meta, &data, seconds(20)), ReadResult::kFrame)
      << "no frames after the stage came back:\n"
      << source->err();
  EXPECT_GT(meta.seq, before);
  stage.reset();
}

}  // namespace
}  // namespace edgefd::runtime
