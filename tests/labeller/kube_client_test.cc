// Configuration and transport: kubeconfig and in-cluster config, TLS verification, client
// certificates, and the health endpoint, all over real sockets on loopback.
#include <cpprest/asyncrt_utils.h>
#include <cpprest/http_client.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;

std::string B64(const std::string& s) {
  return utility::conversions::to_base64(std::vector<unsigned char>(s.begin(), s.end()));
}

class KubeClientTest : public KubeTest {
 protected:
  // A kubeconfig for the test server; `user` is the YAML body of the user entry.
  fs::path Kubeconfig(const std::string& cluster_extra, const std::string& user) {
    fs::path p = dir_ / "kubeconfig";
    WriteFile(p,
              "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
              "contexts:\n- name: edge\n  context: {cluster: c1, user: u1}\n"
              "clusters:\n- name: c1\n  cluster:\n    server: " +
                  server_->url() + "\n" + cluster_extra + "users:\n- name: u1\n  user:\n" + user);
    return p;
  }
  std::string CaData() const {
    return "    certificate-authority-data: " + B64(ReadFile(pki_->ca_cert)) + "\n";
  }
  int GetNodeStatus(const KubeConfig& config, std::string* error = nullptr) {
    auto api = MakeKubeClient(config);
    if (!api) {
      if (error) *error = api.error().message;
      return -1;
    }
    auto r = (*api)->Send("GET", "/api/v1/nodes/n1", "", "");
    if (!r) {
      if (error) *error = r.error().message;
      return -1;
    }
    return r->status;
  }
};

TEST_F(KubeClientTest, KubeconfigWithInlineCaAndTokenWorks) {
  auto config = LoadKubeconfig(Kubeconfig(CaData(), "    token: token-1\n"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server, server_->url());
  EXPECT_EQ(GetNodeStatus(*config), 200);
}

TEST_F(KubeClientTest, KubeconfigWithFilesRelativeToItAndClientCertificate) {
  fs::copy_file(pki_->ca_cert, dir_ / "ca.crt");
  fs::copy_file(pki_->client_cert, dir_ / "client.crt");
  fs::copy_file(pki_->client_key, dir_ / "client.key");
  auto config = LoadKubeconfig(Kubeconfig("    certificate-authority: ca.crt\n",
                                          "    client-certificate: client.crt\n"
                                          "    client-key: client.key\n"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_TRUE(config->token.empty());
  EXPECT_EQ(GetNodeStatus(*config), 200);  // authenticated by the certificate alone
}

TEST_F(KubeClientTest, KubeconfigTokenFileIsRereadPerRequest) {
  auto config = LoadKubeconfig(Kubeconfig(CaData(), "    tokenFile: token\n"));
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto api = MakeKubeClient(*config);
  ASSERT_TRUE(api.ok());
  EXPECT_EQ((*api)->Send("GET", "/api/v1/nodes/n1", "", "")->status, 200);
  server_->SetToken("token-2");
  EXPECT_EQ((*api)->Send("GET", "/api/v1/nodes/n1", "", "")->status, 401);
  WriteFile(dir_ / "token", "token-2");
  EXPECT_EQ((*api)->Send("GET", "/api/v1/nodes/n1", "", "")->status, 200);
}

TEST_F(KubeClientTest, ServerSignedByAnotherCaIsRejected) {
  KubeConfig config = Config();
  config.ca_pem = ReadFile(pki_->other_ca_cert);
  std::string error;
  EXPECT_EQ(GetNodeStatus(config, &error), -1);
  EXPECT_NE(error.find(server_->url()), std::string::npos) << error;
  EXPECT_EQ(server_->Count("GET"), 0u);  // nothing was sent to the impostor
}

TEST_F(KubeClientTest, InsecureSkipTlsVerifyConnectsAnyway) {
  KubeConfig config = Config();
  config.ca_pem = ReadFile(pki_->other_ca_cert);
  config.insecure_skip_tls_verify = true;
  EXPECT_EQ(GetNodeStatus(config), 200);
}

TEST_F(KubeClientTest, BadKubeconfigsGiveErrorsNamingFileAndKey) {
  auto missing = LoadKubeconfig(dir_ / "absent.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("absent.yaml"), std::string::npos);

  WriteFile(dir_ / "bad.yaml", "clusters: [unclosed\n");
  auto bad = LoadKubeconfig(dir_ / "bad.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("not valid YAML"), std::string::npos) << bad.error().message;

  WriteFile(dir_ / "ctx.yaml", "current-context: nowhere\ncontexts: []\n");
  auto ctx = LoadKubeconfig(dir_ / "ctx.yaml");
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.error().message.find("'nowhere'"), std::string::npos) << ctx.error().message;

  auto exec = LoadKubeconfig(Kubeconfig(CaData(), "    exec: {command: aws}\n"));
  ASSERT_FALSE(exec.ok());
  EXPECT_NE(exec.error().message.find("exec"), std::string::npos) << exec.error().message;

  auto b64 =
      LoadKubeconfig(Kubeconfig("    certificate-authority-data: '%%%'\n", "    token: x\n"));
  ASSERT_FALSE(b64.ok());
  EXPECT_NE(b64.error().message.find("certificate-authority-data"), std::string::npos)
      << b64.error().message;

  KubeConfig garbage_ca = Config();
  garbage_ca.ca_pem = "not a certificate";
  auto client = MakeKubeClient(garbage_ca);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().message.find("certificate authority"), std::string::npos);
}

TEST_F(KubeClientTest, InClusterConfigReadsServiceAccount) {
  fs::path sa = dir_ / "sa";
  fs::create_directories(sa);
  fs::copy_file(pki_->ca_cert, sa / "ca.crt");
  WriteFile(sa / "token", "token-1\n");
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()).c_str(), 1);
  auto config = InClusterConfig(sa);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server, server_->url());
  EXPECT_EQ(GetNodeStatus(*config), 200);

  unsetenv("KUBERNETES_SERVICE_HOST");
  auto outside = InClusterConfig(sa);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("--kubeconfig"), std::string::npos);
  unsetenv("KUBERNETES_SERVICE_PORT");
}

TEST_F(KubeClientTest, UnreadableTokenFileIsNamed) {
  KubeConfig config = Config();
  config.token_file = dir_ / "no-token";
  std::string error;
  EXPECT_EQ(GetNodeStatus(config, &error), -1);
  EXPECT_NE(error.find("no-token"), std::string::npos) << error;
}

TEST(HealthServer, ReadyOnlyAfterASuccessfulReconcileAndServesMetrics) {
  AgentMetrics metrics;
  auto server = StartHealthEndpoint("127.0.0.1:0", AgentHealth(metrics), "--metrics-addr");
  ASSERT_TRUE(server.ok()) << server.error().message;
  web::http::client::http_client client("http://127.0.0.1:" + std::to_string((*server)->port()));
  auto get = [&](const std::string& path) {
    auto r = client.request(web::http::methods::GET, path).get();
    return std::make_pair(static_cast<int>(r.status_code()), r.extract_utf8string(true).get());
  };
  EXPECT_EQ(get("/healthz").first, 200);
  EXPECT_EQ(get("/readyz").first, 503);
  metrics.ready = true;
  metrics.patches = 3;
  metrics.labels_owned = 12;
  EXPECT_EQ(get("/readyz").first, 200);
  auto [status, body] = get("/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("\nedgefd_node_patches_total 3\n"), std::string::npos) << body;
  EXPECT_NE(body.find("\nedgefd_labels_owned 12\n"), std::string::npos) << body;
  EXPECT_NE(body.find("# TYPE edgefd_reconciles_total counter"), std::string::npos);
  EXPECT_EQ(get("/nope").first, 404);
}

TEST(HealthServer, BadAddressIsNamed) {
  AgentMetrics metrics;
  auto server = StartHealthEndpoint("9402", AgentHealth(metrics), "--metrics-addr");
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("--metrics-addr '9402'"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::testing
