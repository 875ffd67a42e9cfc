// The calibration file the labeller and the DRA driver publish from (--calibration FILE).
#include "edgefd/discovery/calibration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/testing/files.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;

std::string Calibration(const std::string& classes) {
  return R"({"kind": "edgefd-pipeline calibration", "model": "yolo-tiny", "classes": [)" + classes +
         "]}";
}

TEST(CalibrationSummary, TakesEachClassAtTheMostThreadsMeasured) {
  testing::TempDir dir;
  auto file = dir.Write("cal.json", Calibration(R"(
      {"class": "big", "threads": [{"threads": 2, "gflops": 38.96}, {"threads": 1, "gflops": 20}]},
      {"class": "little", "threads": [{"threads": 1, "gflops": 4.5},
                                      {"threads": 4, "gflops": 0}]})"));
  auto summary = ReadCalibrationSummary(file);
  ASSERT_TRUE(summary.ok()) << summary.error().message;
  EXPECT_EQ(summary->model, "yolo-tiny");
  ASSERT_EQ(summary->classes.size(), 2u);
  EXPECT_EQ(summary->classes.at("big").threads, 2);
  EXPECT_DOUBLE_EQ(summary->classes.at("big").gflops, 38.96);
  // calibrate writes 0 for a count it has no figure for: not a measurement.
  EXPECT_EQ(summary->classes.at("little").threads, 1);
  EXPECT_EQ(CalibrationLabels(*summary), (Labels{{"edgefd.io/cpu.big.gflops", "39.0"},
                                                 {"edgefd.io/cpu.little.gflops", "4.5"},
                                                 {"edgefd.io/cpu.gflops-model", "yolo-tiny"}}));
}

TEST(CalibrationSummary, BadInputIsAnErrorNamingTheFile) {
  testing::TempDir dir;
  const std::pair<std::string, std::string> cases[] = {
      {"{not json", ""},
      {R"({"labels": {}})", "not a calibration"},
      {Calibration(R"({"class": "big", "threads": [{"threads": 1, "gflops": -3}]})"),
       "class big, run 0: \"gflops\" must be a positive number"},
      {Calibration(R"({"class": "big", "threads": [{"threads": 1, "gflops": "fast"}]})"),
       "\"gflops\" must be a positive number"},
      {Calibration(R"({"class": "big", "threads": [{"threads": 1, "gflops": 1e300}]})"),
       "\"gflops\" must be a positive number"},
      {Calibration(R"({"class": "big", "threads": [{"threads": -2, "gflops": 3}]})"),
       "\"threads\" must be an integer"},
      {Calibration(R"({"class": "big", "threads": [{"threads": 1, "gflops": 0}]})"),
       "class big has no GFLOP/s figure"},
      {Calibration(R"({"class": "huge", "threads": [{"threads": 1, "gflops": 3}]})"),
       "not big, mid or little"},
      {Calibration(R"({"class": "big", "threads": [{"threads": 1, "gflops": 3}]},
                      {"class": "big", "threads": [{"threads": 1, "gflops": 4}]})"),
       "listed twice"},
      {Calibration(""), "1 to 3 core classes"},
  };
  for (const auto& [text, says] : cases) {
    auto file = dir.Write("bad.json", text);
    auto summary = ReadCalibrationSummary(file);
    ASSERT_FALSE(summary.ok()) << text;
    EXPECT_THAT(summary.error().message, HasSubstr(file.string())) << text;
    EXPECT_THAT(summary.error().message, HasSubstr(says)) << text;
  }
  auto missing = ReadCalibrationSummary(dir.path() / "none.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.error().message, HasSubstr((dir.path() / "none.json").string()));
}

}  // namespace
}  // namespace edgefd
