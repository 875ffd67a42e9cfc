// The command-line conventions every binary shares.
#include "edgefd/common/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgefd {
namespace {

std::optional<int> Parse(CLI::App& app, std::vector<std::string> args) {
  args.insert(args.begin(), app.get_name());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseCommandLine(app, static_cast<int>(argv.size()), argv.data());
}

TEST(ParseCommandLine, HelpAndVersionSucceedBadUsageIsTwo) {
  CLI::App app("does things", "prog");
  ConfigureApp(app);
  int n = 0;
  app.add_option("--count", n)->check(IntegerIn(1, 9));
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(app, {"--help"}), kExitOk);
  std::string help = testing::internal::GetCapturedStdout();
  EXPECT_THAT(help, ::testing::StartsWith("Usage: prog [OPTIONS]\n\ndoes things\n"));
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(app, {"--version"}), kExitOk);
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "prog " + std::string(Version()) + "\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(Parse(app, {"--count", "10"}), kExitUsage);
  EXPECT_EQ(testing::internal::GetCapturedStderr(),
            "prog: --count: '10' is not an integer from 1 to 9\nTry 'prog --help'.\n");
  testing::internal::CaptureStderr();
  EXPECT_EQ(Parse(app, {"--cuont", "3"}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), ::testing::HasSubstr("--cuont"));
  // The last of a repeated flag wins, as with getopt.
  EXPECT_EQ(Parse(app, {"--count", "2", "--count=3"}), std::nullopt);
  EXPECT_EQ(n, 3);
}

TEST(MetricsAddrFlag, NoneOrEmptyTurnsTheEndpointOff) {
  CLI::App app("", "prog");
  ConfigureApp(app);
  std::string addr = ":9402";
  AddMetricsAddrFlag(app, addr);
  EXPECT_EQ(Parse(app, {"--metrics-address", "127.0.0.1:0"}), std::nullopt);
  EXPECT_EQ(addr, "127.0.0.1:0");  // the device plugin's old spelling still works
  EXPECT_TRUE(MetricsEnabled(addr));
  EXPECT_TRUE(MetricsEnabled(":9402"));
  EXPECT_FALSE(MetricsEnabled("none"));
  EXPECT_FALSE(MetricsEnabled(""));
}

TEST(Validators, NameTheValue) {
  std::string text = "5s";
  EXPECT_EQ(SecondsIn(0, 10)(text), "'5s' is not a number of seconds from 0 to 10");
  text = "2.5";
  EXPECT_EQ(SecondsIn(0, 10)(text), "");
  text = "x";
  EXPECT_EQ(OneOf({"a", "b"})(text), "'x' is not one of a, b");
  text = "1e400";
  EXPECT_NE(NumberIn(0, 1)(text), "");
}

TEST(KubeFlags, OneMeaningWithTheProgramsOwnResyncDefault) {
  CLI::App app("talks to Kubernetes", "prog");
  ConfigureApp(app);
  KubeFlags flags;
  flags.resync = std::chrono::seconds(30);
  AddKubeFlags(app, flags, "the node's slices");
  testing::internal::CaptureStdout();
  EXPECT_EQ(Parse(app, {"--help"}), kExitOk);
  EXPECT_THAT(testing::internal::GetCapturedStdout(),
              ::testing::HasSubstr("re-read the node's slices at least this often"));
  EXPECT_EQ(Parse(app, {"--kubeconfig", "/k", "--node-name", "n1", "--insecure-skip-tls-verify",
                        "--allow-insecure-http", "--resync", "7"}),
            std::nullopt);
  EXPECT_EQ(flags, (KubeFlags{"/k", "n1", true, true, std::chrono::seconds(7)}));
  testing::internal::CaptureStderr();
  EXPECT_EQ(Parse(app, {"--resync", "0"}), kExitUsage);
  EXPECT_THAT(testing::internal::GetCapturedStderr(), ::testing::HasSubstr("--resync: '0'"));
}

}  // namespace
}  // namespace edgefd
