// The dependency arrows of DESIGN.md, as the dynamic linker sees them: the runtime reads its
// allocation from the environment and never links the discovery library's C libraries.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
  for (const char* lib : {"libudev", "libfdt", "libyaml-cpp", "libcpprest"}) {
    EXPECT_THAT(needed, Not(HasSubstr(lib))) << needed;
  }
}

}  // namespace
}  // namespace edgefd
