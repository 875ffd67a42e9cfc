// The dependency arrows of DESIGN.md, as the dynamic linker sees them: the runtime reads its
// allocation from the environment and never links the discovery library's C libraries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LinkedLibraries, TheRuntimeLinksNoDiscoveryLibrary) {
  const std::string needed = testing::NeededLibraries(testing::PipelineBin());
  if (needed.empty()) GTEST_SKIP() << "readelf is not available";
  EXPECT_THAT(needed, HasSubstr("libgrpc++"));  // what it does link, so the check can fail
  // Nor the kube library's libcurl: `plan --from-cluster` is edgefd-plan's, which does.
  for (const char* lib : {"libudev", "libfdt", "libyaml-cpp", "libcpprest", "libcurl"}) {
    EXPECT_THAT(needed, Not(HasSubstr(lib))) << needed;
  }
  const std::string plan = testing::NeededLibraries(
      (std::filesystem::path(testing::PipelineBin()).parent_path() / "edgefd-plan").string());
  EXPECT_THAT(plan, HasSubstr("libcurl"));
}

}  // namespace
}  // namespace edgefd
