// The discovery flags: one meaning in edgefd-labeller and edgefd-deviceplugin.
#include "edgefd/discovery/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgefd {
namespace {

using ::testing::ElementsAre;

// Parses `args` (without a program name) into fresh flags; the exit code when parsing stops.
std::optional<int> Parse(DiscoveryFlags& flags, std::vector<std::string> args) {
  CLI::App app("", "test");
  ConfigureApp(app);
  AddDiscoveryFlags(app, flags);
  args.insert(args.begin(), "test");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(app, static_cast<int>(argv.size()), argv.data());
}

TEST(DiscoveryFlags, SetTheDiscoveryOptions) {
  DiscoveryFlags flags;
  ASSERT_FALSE(Parse(flags, {"--root", "/host", "--dtb", "x.dtb", "--node", "vpu", "--node", "isp0",
                             "--config", "a.yaml", "--config=b.yaml", "--no-udev"}));
  EXPECT_EQ(flags.discovery.root, "/host");
  EXPECT_EQ(flags.discovery.dtb, "x.dtb");
  EXPECT_THAT(flags.discovery.extra_node_names, ElementsAre("vpu", "isp0"));
  EXPECT_THAT(flags.discovery.rule_files, ElementsAre("a.yaml", "b.yaml"));
  EXPECT_EQ(flags.discovery.udev, false);
  DiscoveryFlags defaults;
  ASSERT_FALSE(Parse(defaults, {}));
  EXPECT_EQ(defaults.discovery.root, "/");
  EXPECT_FALSE(defaults.discovery.udev.has_value());  // decided by --root and --dtb
  EXPECT_EQ(defaults.rescan, std::chrono::seconds(30));
}

TEST(DiscoveryFlags, RescanIsSecondsWithFractionsAndZeroMeansNever) {
  DiscoveryFlags flags;
  ASSERT_FALSE(Parse(flags, {"--rescan", "0.05", "--udev"}));
  EXPECT_EQ(flags.rescan, std::chrono::milliseconds(50));
  EXPECT_EQ(flags.discovery.udev, true);
  ASSERT_FALSE(Parse(flags, {"--rescan", "0"}));
  EXPECT_EQ(flags.rescan, std::chrono::milliseconds(0));
  ASSERT_FALSE(Parse(flags, {"--rescan", "86400"}));
  EXPECT_EQ(flags.rescan, std::chrono::hours(24));
  for (const char* bad : {"-1", "86401", "5s", "", "nan"}) {
    DiscoveryFlags f;
    EXPECT_EQ(Parse(f, {"--rescan", bad}), kExitUsage) << bad;
  }
}

TEST(DiscoveryFlags, NodeNamesMustBeNodeNames) {
  DiscoveryFlags flags;
  EXPECT_EQ(Parse(flags, {"--node", "a b"}), kExitUsage);
  EXPECT_EQ(Parse(flags, {"--node", ""}), kExitUsage);
}

}  // namespace
}  // namespace edgefd
