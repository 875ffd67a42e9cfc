// `edgefd-pipeline run` starts its stage processes with StageArgv; a stage reads its command
// line with the same flag definitions. What one writes, the other must read back exactly.
#include "edgefd/runtime/stage_args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace edgefd::runtime {
namespace {

using ::testing::HasSubstr;

StageArgs EveryFieldSet() {
  StageArgs a;
  a.model.name = "yolo-tiny";
  a.model.conv = {640, 480, 3};
  a.model.seed = 1234567;
  a.model.weights_path = "/weights/tiny yolo.bin";  // a space survives: argv is not a shell
  a.stages = 4;
  a.index = 2;
  a.layers = std::make_pair(3, 7);
  a.listen = "shm:edgefd-42-2";
  a.next = "unix:/tmp/run/link3.sock";
  a.policy = Policy::kBlock;
  a.threads = 3;
  a.cpus = std::vector<int>{4, 5, 7};
  a.metrics_addr = "[::1]:9090";
  a.delay_ms = 0.125;
  a.idle_exit_ms = 60000;
  a.tls = {"/tls/stage.crt", "/tls/stage.key", "/tls/ca.crt", "/secrets/pipeline/token"};
  a.wire_in = WireFormat::kFloat16;
  a.wire_out = WireFormat::kInt8;
  a.quiet = true;
  a.check = true;
  return a;
}

TEST(StageArgs, WhatRunWritesAStageReadsBack) {
  for (const StageArgs& args : {StageArgs{}, EveryFieldSet()}) {
    std::vector<std::string> argv = StageArgv(args);
    ASSERT_EQ(argv.front(), "stage");
    auto parsed = ParseStageArgs(argv);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(*parsed, args) << ::testing::PrintToString(argv);
  }
}

TEST(StageArgs, NoCpusAndUnpinnedAreDifferentThings) {
  StageArgs pinned_nowhere;
  pinned_nowhere.cpus = std::vector<int>{};  // "--cpus none": not pinned, whatever is allocated
  auto parsed = ParseStageArgs(StageArgv(pinned_nowhere));
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->cpus.has_value());
  EXPECT_TRUE(parsed->cpus->empty());
  auto from_allocation = ParseStageArgs(StageArgv(StageArgs{}));
  ASSERT_TRUE(from_allocation.ok());
  EXPECT_FALSE(from_allocation->cpus.has_value());
}

TEST(StageArgs, MetricsPortIsTheOldSpellingOfMetricsAddr) {
  auto port =
      ParseStageArgs({"stage", "--listen", "shm:a", "--next", "shm:b", "--metrics-port", "9090"});
  ASSERT_TRUE(port.ok()) << port.error().message;
  EXPECT_EQ(port->metrics_addr, ":9090");
  auto off =
      ParseStageArgs({"stage", "--listen", "shm:a", "--next", "shm:b", "--metrics-port", "-1"});
  ASSERT_TRUE(off.ok()) << off.error().message;
  EXPECT_EQ(off->metrics_addr, "none");
}

TEST(StageArgs, BadValuesAreNamed) {
  auto bad = ParseStageArgs({"stage", "--listen", "shm:a", "--next", "shm:b", "--layers", "5:2"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("--layers: '5:2' is not FIRST:LAST"));
  auto missing = ParseStageArgs({"stage", "--listen", "shm:a"});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr("--next"));
  auto cpus = ParseStageArgs({"stage", "--listen", "a", "--next", "b", "--cpus", "4,x"});
  ASSERT_FALSE(cpus.ok());
  EXPECT_THAT(cpus.error().message, HasSubstr("'4,x'"));
}

}  // namespace
}  // namespace edgefd::runtime
