// edgefd-labeller without --dry-run, run as a process against the test API server.
#include <cpprest/asyncrt_utils.h>
#include <gtest/gtest.h>

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

class KubeCliTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    std::string ca = ReadFile(pki_->ca_cert);
    kubeconfig_ = dir_ / "kubeconfig";
    WriteFile(
        kubeconfig_,
        "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
        "contexts:\n- name: edge\n  context: {cluster: c1, user: u1}\n"
        "clusters:\n- name: c1\n  cluster:\n    server: " +
            server_->url() + "\n    certificate-authority-data: " +
            utility::conversions::to_base64(std::vector<unsigned char>(ca.begin(), ca.end())) +
            "\nusers:\n- name: u1\n  user:\n    tokenFile: token\n");
  }

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

  fs::path kubeconfig_;
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

}  // namespace
}  // namespace edgefd::testing
