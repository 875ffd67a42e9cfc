// edgefd-labeller --dry-run over the CPU fixtures and blobs, as a user runs it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/common/json.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Fixture(const std::string& name) {
  return (testing::TestdataDir() / "cpu" / name).string();
}

TEST(CpuCli, DryRunPrintsTheCpuLabelsOfAFixtureRoot) {
  auto r = testing::RunCommand({testing::LabellerBin(), "--dry-run", "--root", Fixture("rk3399")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "edgefd.io/cpu.arch=arm64\n"
            "edgefd.io/cpu.big.capacity=1024\n"
            "edgefd.io/cpu.big.cores=2\n"
            "edgefd.io/cpu.big.max-mhz=1800\n"
            "edgefd.io/cpu.big.model=cortex-a72\n"
            "edgefd.io/cpu.cores=6\n"
            "edgefd.io/cpu.heterogeneous=true\n"
            "edgefd.io/cpu.little.capacity=381\n"
            "edgefd.io/cpu.little.cores=4\n"
            "edgefd.io/cpu.little.max-mhz=1416\n"
            "edgefd.io/cpu.little.model=cortex-a53\n");
}

TEST(CpuCli, JsonCarriesTheClassCpuListsBesideTheLabels) {
  auto r = testing::RunCommand(
      {testing::LabellerBin(), "--dry-run", "--output", "json", "--root", Fixture("intel-hybrid")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseJson(r.out, "stdout").value(), Json::parse(R"({
    "labels": {
      "edgefd.io/cpu.arch": "amd64",
      "edgefd.io/cpu.big.cores": "12",
      "edgefd.io/cpu.big.max-mhz": "5100",
      "edgefd.io/cpu.big.model": "raptor-cove",
      "edgefd.io/cpu.cores": "20",
      "edgefd.io/cpu.heterogeneous": "true",
      "edgefd.io/cpu.little.cores": "8",
      "edgefd.io/cpu.little.max-mhz": "3900",
      "edgefd.io/cpu.little.model": "gracemont",
      "edgefd.io/cpu.threads-per-core": "2"
    },
    "cpus": {"big": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
             "little": [12, 13, 14, 15, 16, 17, 18, 19]}
  })"));
}

TEST(CpuCli, JsonListsOfflineCpusApart) {
  auto r = testing::RunCommand(
      {testing::LabellerBin(), "--dry-run", "--output", "json", "--root", Fixture("cpus-offline")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto json = ParseJson(r.out, "stdout");
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_EQ((*json)["cpus"], Json::parse(R"({"big": [4, 5], "little": [0, 1, 2, 3],
                                             "offline": [6, 7]})"));
  EXPECT_EQ((*json)["labels"]["edgefd.io/cpu.cores"], "6");
}

TEST(CpuCli, GarbledMidrIsLoggedAndTheRunStillSucceeds) {
  auto r =
      testing::RunCommand({testing::LabellerBin(), "--dry-run", "--root", Fixture("garbage-midr")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("cpu0/regs/identification/midr_el1: not a MIDR value"));
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.big.model=cortex-a72\n"));
}

TEST(CpuCli, DtbModeNeverMixesInThisMachinesCpus) {
  std::string blob = (testing::SharedDevicetrees() / "odroid-xu4.dtb").string();
  if (!std::filesystem::exists(blob)) GTEST_SKIP() << "no " << blob;
  // Default --root is this machine's "/": its CPUs must not show up.
  auto r = testing::RunCommand({testing::LabellerBin(), "--dry-run", "--dtb", blob});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.arch=arm\n"));
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.cores=8\n"));
  EXPECT_THAT(r.out, HasSubstr("edgefd.io/cpu.little.capacity=377\n"));
  EXPECT_THAT(r.out, Not(HasSubstr("threads-per-core")));
}

}  // namespace
}  // namespace edgefd
