// edgefd-labeller without --dry-run, run as a process against the test API server.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <sstream>

#include "edgefd/testing/http.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kJetsonRoot = TestdataDir() / "roots/jetson-nano-blog";

using CliResult = CommandResult;

class KubeCliTest : public KubeconfigTest {
 protected:
  CliResult Run(const std::string& args) { return RunCommand(CommandLine(LabellerBin(), args)); }

  // The labels the dry run prints for the fixture root.
  Labels DryRunLabels() {
    CliResult r = Run("--dry-run --root " + kJetsonRoot.string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Labels labels;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) labels[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return labels;
  }
};

TEST_F(KubeCliTest, OnceLabelsTheNodeWithWhatTheDryRunPrints) {
  Labels expected = DryRunLabels();
  ASSERT_FALSE(expected.empty());
  expected.insert({{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/arch", "arm64"}});
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1"), expected);
  EXPECT_EQ(server_->Count("PATCH"), 1u);

  // A second run (a restarted pod) finds nothing to do.
  r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
          kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->Count("PATCH"), 1u);
  EXPECT_EQ(server_->NodeLabels("n1"), expected);
}

TEST_F(KubeCliTest, NodeNameComesFromTheEnvironment) {
  setenv("NODE_NAME", "n1", 1);
  CliResult r =
      Run("--once --kubeconfig " + kubeconfig_.string() + " --root " + kJetsonRoot.string());
  unsetenv("NODE_NAME");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1").count("edgefd.io/board"), 1u);
}

// The exit status comes from the error's code: a node name that cannot be one is bad usage
// (2), found before any request; a Node the API server does not have is a failure (1).
TEST_F(KubeCliTest, OnceExitsWithTheStatusOfItsErrorsKind) {
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name a/b --root " +
                    kJetsonRoot.string());
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--node-name"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Count("GET"), 0u);
  r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name nope --root " +
          kJetsonRoot.string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("'nope'"), std::string::npos) << r.err;
}

TEST_F(KubeCliTest, BadKubeconfigIsUsageErrorNamingTheFile) {
  WriteFile(dir_ / "broken", "current-context: x\n");
  CliResult r = Run("--once --kubeconfig " + (dir_ / "broken").string() + " --node-name n1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find((dir_ / "broken").string()), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);
}

TEST_F(KubeCliTest, MissingDtbIsUsageErrorBeforeAnyRequest) {
  CliResult r = Run("--kubeconfig " + kubeconfig_.string() + " --node-name n1 --dtb " +
                    (dir_ / "absent.dtb").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("absent.dtb"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);
}

TEST_F(KubeCliTest, RejectedTokenFailsWithAClearMessage) {
  WriteFile(dir_ / "token", "wrong\n");
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("credentials"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Count("PATCH"), 0u);
}

TEST_F(KubeCliTest, OutsideAClusterWithoutKubeconfigSaysWhatToDo) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  CliResult r = Run("--once --node-name n1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--kubeconfig"), std::string::npos) << r.err;
}

TEST_F(KubeCliTest, BadOptionValuesAreRejected) {
  EXPECT_EQ(Run("--resync 0").exit_code, 2);
  EXPECT_EQ(Run("--resync soon").exit_code, 2);
  EXPECT_EQ(Run("--output json").exit_code, 2);
  CliResult r =
      Run("--kubeconfig " + kubeconfig_.string() + " --node-name n1 --metrics-addr nonsense");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--metrics-addr 'nonsense'"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);  // refused before labelling anything
}

TEST_F(KubeCliTest, NfdOutputWritesTheFeatureFile) {
  Labels expected = DryRunLabels();
  fs::path file = dir_ / "features.d" / "edgefd";
  CliResult r =
      Run("--once --output nfd --nfd-file " + file.string() + " --root " + kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string want;
  for (const auto& [k, v] : expected) want += k + "=" + v + "\n";
  EXPECT_EQ(ReadFile(file), want);
  EXPECT_EQ(server_->Requests().size(), 0u);  // NFD mode never talks to the API server
}

// As deployed before: NFD's root-owned features.d and the labeller's uid 10001. The error says
// who owns the directory, who the labeller is, and what to deploy instead.
TEST_F(KubeCliTest, NfdOutputIntoADirectoryOfAnotherUserSaysWhatToDo) {
  fs::path features = dir_ / "features.d";
  fs::create_directories(features);
  fs::permissions(dir_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  std::vector<std::string> argv = CommandLine(LabellerBin(), "--once --output nfd --nfd-file " +
                                                                 (features / "edgefd").string() +
                                                                 " --root " + kJetsonRoot.string());
  if (geteuid() == 0) {
    // Root may write anywhere: run as the DaemonSet's user instead.
    if (!fs::exists("/usr/bin/setpriv")) GTEST_SKIP() << "needs setpriv (util-linux) as root";
    const std::vector<std::string> as_10001 = {"/usr/bin/setpriv", "--reuid=10001", "--regid=10001",
                                               "--clear-groups"};
    // Cross-built tests run under qemu-user, whose loader lies in root's private sysroot
    // (~/.cache/edgefd): uid 10001 cannot even start the binary there.
    std::vector<std::string> version = as_10001;
    version.insert(version.end(), {LabellerBin(), "--version"});
    if (CliResult v = RunCommand(version); v.exit_code != 0) {
      GTEST_SKIP() << "uid 10001 cannot run " << LabellerBin() << " here: " << v.err;
    }
    argv.insert(argv.begin(), as_10001.begin(), as_10001.end());
  } else {
    fs::permissions(features, fs::perms::owner_write, fs::perm_options::remove);
  }
  CliResult r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("cannot create a temp file in " + features.string() + ": Permission denied"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(geteuid() == 0 ? "runs as uid 10001" : "runs as uid"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("manifests/components/nfd-feature-file"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(features / "edgefd"));
}

TEST_F(KubeCliTest, DaemonLabelsRepairsServesHealthAndStopsCleanlyOnSigterm) {
  Child daemon({LabellerBin(), "--kubeconfig", kubeconfig_.string(), "--node-name", "n1", "--root",
                kJetsonRoot.string(), "--resync", "1", "--metrics-addr", "127.0.0.1:0"});
  ASSERT_TRUE(daemon.started());

  auto labelled = [&] { return server_->NodeLabels("n1").count("edgefd.io/board") == 1; };
  bool converged = server_->WaitFor(labelled);
  bool repaired = false;
  std::string readyz, metrics;
  if (converged) {
    EXPECT_EQ(server_->ForeignPatch("n1", R"({"metadata":{"labels":{"edgefd.io/board":null}}})"),
              200);
    repaired = server_->WaitFor(labelled);  // the 1 s resync puts it back
    // The health endpoint started before the first reconcile and logged its port.
    const std::string marker = "/metrics on port ";
    EXPECT_TRUE(daemon.WaitFor([&](const std::string&, const std::string& err) {
      return err.find(marker) != std::string::npos;
    })) << daemon.err();
    if (size_t at = daemon.err().find(marker); at != std::string::npos) {
      auto port = static_cast<uint16_t>(std::stoi(daemon.err().substr(at + marker.size())));
      readyz = HttpGet(port, "/readyz");
      metrics = HttpGet(port, "/metrics");
    }
  }
  EXPECT_EQ(daemon.Terminate(), 0) << daemon.err();
  EXPECT_TRUE(converged);
  EXPECT_TRUE(repaired);
  EXPECT_EQ(readyz.substr(0, 12), "HTTP/1.1 200") << readyz;
  // 2 patches (label, repair); the second may still be on its way back to the agent.
  EXPECT_TRUE(metrics.find("\nedgefd_node_patches_total 2\n") != std::string::npos ||
              metrics.find("\nedgefd_node_patches_total 1\n") != std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nedgefd_ready 1\n"), std::string::npos) << metrics;
}

TEST_F(KubeCliTest, OnceStopsWithinASecondOfSigtermWhileRetryingAlsoAsPid1) {
  const std::vector<std::string> once = {
      LabellerBin(), "--once", "--kubeconfig", kubeconfig_.string(),
      "--node-name", "n1",     "--root",       kJetsonRoot.string()};
  for (bool pid1 : {false, true}) {
    if (pid1 && !CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1)";
    // The API server is having a bad day: --once retries with backoff for a minute or more.
    for (int i = 0; i < 50; ++i)
      server_->InjectFault({FakeApiServer::FaultKind::kStatus, 503, {}, "", 0});
    Child child(pid1 ? AsPid1(once) : once);
    ASSERT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
      return err.find("retrying in") != std::string::npos;
    })) << child.err();
    std::chrono::milliseconds took{};
    // Stopped before the Node was labelled: a failure, said so.
    EXPECT_EQ(child.StopWithin(SIGTERM, kStopDeadline, &took), 1) << "pid1=" << pid1 << "\n"
                                                                  << child.err();
    EXPECT_NE(child.err().find("stopped"), std::string::npos) << child.err();
    RecordProperty(pid1 ? "once_pid1_stop_ms" : "once_stop_ms", static_cast<int>(took.count()));
  }
}

TEST_F(KubeCliTest, DaemonStopsWithinASecondOfSigtermWithARequestInFlightAlsoAsPid1) {
  const std::vector<std::string> daemon = {
      LabellerBin(), "--kubeconfig",       kubeconfig_.string(), "--node-name", "n1",
      "--root",      kJetsonRoot.string(), "--metrics-addr",     "127.0.0.1:0"};
  for (bool pid1 : {false, true}) {
    if (pid1 && !CanRunAsPid1()) GTEST_SKIP() << "needs root and unshare(1)";
    // The API server accepts the request and never answers (the client gives up after 10 s).
    server_->InjectFault({FakeApiServer::FaultKind::kHang, 0, std::chrono::seconds(60), "GET", 0});
    const size_t gets = server_->Count("GET");
    Child child(pid1 ? AsPid1(daemon) : daemon);
    ASSERT_TRUE(server_->WaitFor([&] { return server_->Count("GET") > gets; })) << child.err();
    std::chrono::milliseconds took{};
    EXPECT_EQ(child.StopWithin(SIGTERM, kStopDeadline, &took), 0) << "pid1=" << pid1 << "\n"
                                                                  << child.err();
    RecordProperty(pid1 ? "daemon_pid1_stop_ms" : "daemon_stop_ms", static_cast<int>(took.count()));
  }
}

// --prune (the chart's pre-delete hook): exactly what edgefd.io/owned-labels lists goes, and
// only names under edgefd's prefixes, whatever the annotation says; then the annotation.
TEST_F(KubeCliTest, PruneRemovesOnlyTheOwnedLabelsAndTheAnnotation) {
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_GT(server_->NodeLabels("n1").size(), 3u);
  // Someone else's labels, one under edgefd.io/ that edgefd never set, and a forged entry in
  // the annotation naming a foreign label.
  const std::string owned = server_->NodeAnnotations("n1").at("edgefd.io/owned-labels");
  ASSERT_EQ(server_->ForeignPatch("n1", R"({"metadata":{"labels":{"team":"vision",)"
                                        R"("edgefd.io/by-hand":"yes"},"annotations":)"
                                        R"({"edgefd.io/owned-labels":")" +
                                            owned + R"(,team"}}})"),
            200);

  r = Run("--prune --kubeconfig " + kubeconfig_.string() + " --node-name n1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1"), (Labels{{"kubernetes.io/hostname", "n1"},
                                               {"kubernetes.io/arch", "arm64"},
                                               {"team", "vision"},
                                               {"edgefd.io/by-hand", "yes"}}));
  EXPECT_EQ(server_->NodeAnnotations("n1").count("edgefd.io/owned-labels"), 0u);

  // Nothing left to prune: no patch.
  const size_t patches = server_->Count("PATCH");
  r = Run("--prune --kubeconfig " + kubeconfig_.string() + " --node-name n1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->Count("PATCH"), patches);
}

TEST_F(KubeCliTest, PruneAllNodesVisitsEveryNode) {
  server_->AddNode("n2", {{"edgefd.io/board", "x"}, {"other", "y"}},
                   {{"edgefd.io/owned-labels", "edgefd.io/board"}});
  server_->AddNode("n3", {{"edgefd.io/board", "z"}});  // not owned: left alone
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Run("--prune --all-nodes --kubeconfig " + kubeconfig_.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1"),
            (Labels{{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/arch", "arm64"}}));
  EXPECT_EQ(server_->NodeLabels("n2"), (Labels{{"other", "y"}}));
  EXPECT_EQ(server_->NodeLabels("n3"), (Labels{{"edgefd.io/board", "z"}}));
  EXPECT_EQ(Run("--all-nodes --kubeconfig " + kubeconfig_.string()).exit_code, 2);
  EXPECT_EQ(Run("--prune --dry-run").exit_code, 2);
}

}  // namespace
}  // namespace edgefd::testing
