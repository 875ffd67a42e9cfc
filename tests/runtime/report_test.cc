// The run report is JSON a program can read, whatever the environment and the timings hold.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "edgefd/common/json.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::runtime {
namespace {

using ::testing::HasSubstr;

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

TEST(RunReportJson, NonFiniteFiguresAreNullAndBadBytesAreReplaced) {
  auto model = MakeModel("conv", {16, 16, 1});
  ASSERT_TRUE(model.ok());
  RunReport report;
  report.options.model.name = "conv";
  report.sink.fps = std::nan("");  // a run whose sink saw one frame
  report.sink.ccr = std::numeric_limits<double>::infinity();
  report.sink.latency_measured = true;
  report.sink.latency_p50_ms = 1.23456;
  OpenedDevice device;
  // The device plugin's environment is input: IDs and paths are whatever bytes it holds.
  device.resource = "EDGETPU";
  device.id = "\xED\xA0\x80";                   // a UTF-8-encoded surrogate
  device.path = "/dev/\xF4\x90\x80\x80";        // above U+10FFFF
  device.error = "\xE0\x80\xAF: no such file";  // an overlong '/'
  report.devices.push_back(std::move(device));

  const std::string text = report.Json(*model);
  auto parsed = ParseJson(text, "run --json");  // strict: rejects invalid UTF-8 and `nan`
  ASSERT_TRUE(parsed.ok()) << parsed.error().message << "\n" << text;
  const Json& json = *parsed;
  EXPECT_TRUE(json["fps"].is_null());
  EXPECT_TRUE(json["ccr"].is_null());
  EXPECT_EQ(json["latency_p50_ms"], 1.235);
  EXPECT_THAT(json["devices"][0]["id"].get<std::string>(), HasSubstr(kReplacement));
  EXPECT_THAT(json["devices"][0]["path"].get<std::string>(), HasSubstr(kReplacement));
  EXPECT_THAT(json["devices"][0]["error"].get<std::string>(), HasSubstr(": no such file"));
}

TEST(RunReportJson, TheBinaryWritesValidJsonForAHostileAllocation) {
  auto r =
      edgefd::testing::RunCommand({edgefd::testing::PipelineBin(), "run", "--model", "conv",
                                   "--width", "32", "--height", "32", "--frames", "2", "--json"},
                                  {"EDGEFD_EDGETPU_DEVICES=\xED\xA0\x80,\xC0\xAF",
                                   "EDGEFD_EDGETPU_DEVNODES=/dev/\xFF\xFE,/dev/\xED\xA0\x80"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto parsed = ParseJson(r.out, "run --json");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message << "\n" << r.out;
  ASSERT_EQ((*parsed)["devices"].size(), 2u) << r.out;
  EXPECT_THAT((*parsed)["devices"][0]["id"].get<std::string>(), HasSubstr(kReplacement));
}

}  // namespace
}  // namespace edgefd::runtime
