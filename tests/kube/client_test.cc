// Configuration and transport: kubeconfig and in-cluster config, TLS verification, client
// certificates, IPv6, chunked bodies, shared clients and cancellation, all over real sockets
// on loopback.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <future>
#include <map>
#include <thread>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/kube/events.h"
#include "edgefd/testing/http.h"
#include "kube_fixture.h"

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;

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
    return "    certificate-authority-data: " + Base64(ReadFile(pki_->ca_cert)) + "\n";
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

// What the callers decide by: retry (the labeller, the DRA workers) and the kind of answer.
TEST(HttpFailure, AStatusIsAnErrorOfItsKindAndOnlyPassingOnesAreRetried) {
  const std::map<int, ErrorCode> kinds = {{400, ErrorCode::kFailedPrecondition},
                                          {401, ErrorCode::kUnauthenticated},
                                          {403, ErrorCode::kPermissionDenied},
                                          {404, ErrorCode::kNotFound},
                                          {409, ErrorCode::kAborted},
                                          {422, ErrorCode::kFailedPrecondition},
                                          {429, ErrorCode::kResourceExhausted},
                                          {500, ErrorCode::kUnavailable},
                                          {503, ErrorCode::kUnavailable},
                                          {504, ErrorCode::kDeadlineExceeded},
                                          {302, ErrorCode::kUnknown}};
  for (const auto& [status, code] : kinds) {
    const Error e =
        kube::HttpFailure("GET /api/v1/nodes/n1", kube::ApiResponse{status, R"({"message":"m"})"});
    EXPECT_EQ(e.code, code) << status;
    EXPECT_EQ(e.message, "GET /api/v1/nodes/n1: HTTP " + std::to_string(status) + ": m");
    const bool passing = status == 409 || status == 429 || status >= 500;
    EXPECT_EQ(Retryable(e), passing) << status;
    EXPECT_EQ(ExitStatus(e), 1) << status;  // a refusal by the server is no usage error
  }
}

TEST(ApiServerUrl, TakesHostsApartWithIpv6InBrackets) {
  auto v6 = ParseApiServerUrl("https://[fd00::1]:6443");
  ASSERT_TRUE(v6.ok()) << v6.error().message;
  EXPECT_EQ(v6->host, "fd00::1");
  EXPECT_TRUE(v6->ip_literal);
  EXPECT_EQ(v6->port, 6443);
  EXPECT_EQ(v6->host_header, "[fd00::1]:6443");
  auto name = ParseApiServerUrl("https://kube.example:8443/k8s/clusters/c-1/");
  ASSERT_TRUE(name.ok()) << name.error().message;
  EXPECT_EQ(name->host, "kube.example");
  EXPECT_FALSE(name->ip_literal);
  EXPECT_EQ(name->base_path, "/k8s/clusters/c-1");
  auto plain = ParseApiServerUrl("http://10.0.0.1");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->tls);
  EXPECT_EQ(plain->port, 80);
  EXPECT_TRUE(plain->ip_literal);
  EXPECT_EQ(ParseApiServerUrl("https://[::1]").value().port, 443);
  for (const char* bad : {"ftp://x", "https://", "https://fd00::1:6443", "https://[fd00::1",
                          "https://[nothex]:1", "https://h:0", "https://h:65536", "https://h:x",
                          "https://u@h", "https://h/p?q", "https://h\r\nX: y"}) {
    auto r = ParseApiServerUrl(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("server '"), std::string::npos) << r.error().message;
    }
  }
}

TEST_F(KubeClientTest, ReachesAnIpv6ApiServerByKubeconfigAndInCluster) {
  if (!FakeApiServer::HasIpv6Loopback()) GTEST_SKIP() << "this machine has no ::1";
  FakeApiServer::Options options{pki_->server_cert, pki_->server_key, pki_->ca_cert};
  options.ipv6 = true;
  FakeApiServer v6(options);
  v6.SetToken("token-1");
  v6.AddNode("n1", {{"kubernetes.io/hostname", "n1"}});
  const std::string port = std::to_string(v6.port());
  ASSERT_EQ(v6.url(), "https://[::1]:" + port);

  WriteFile(dir_ / "v6.kubeconfig",
            KubeconfigYaml(v6.url(), ReadFile(pki_->ca_cert), "    tokenFile: token\n"));
  auto config = LoadKubeconfig(dir_ / "v6.kubeconfig");
  ASSERT_TRUE(config.ok()) << config.error().message;
  std::string error;
  EXPECT_EQ(GetNodeStatus(*config, &error), 200) << error;

  // In a cluster whose Service network is IPv6 the kubelet sets a bare address.
  fs::path sa = dir_ / "sa";
  fs::create_directories(sa);
  fs::copy_file(pki_->ca_cert, sa / "ca.crt");
  WriteFile(sa / "token", "token-1\n");
  setenv("KUBERNETES_SERVICE_HOST", "::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", port.c_str(), 1);
  auto in_cluster = InClusterConfig(sa);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(in_cluster.ok()) << in_cluster.error().message;
  EXPECT_EQ(in_cluster->server, v6.url());
  auto api = MakeKubeClient(*in_cluster);
  ASSERT_TRUE(api.ok()) << api.error().message;
  auto patched =
      kube::Api(**api).PatchNode("n1", R"({"metadata":{"labels":{"edgefd.io/cpu.arch":"arm64"}}})");
  ASSERT_TRUE(patched.ok()) << patched.error().message;
  EXPECT_EQ(patched->status, 200);
  EXPECT_EQ(v6.NodeLabels("n1").at("edgefd.io/cpu.arch"), "arm64");
}

TEST_F(KubeClientTest, ReadsChunkedResponsesAsKubeApiserverSendsLargeOnes) {
  FakeApiServer::Options options{pki_->server_cert, pki_->server_key, pki_->ca_cert};
  options.chunked = true;
  FakeApiServer chunked(options);
  Labels many;
  for (int i = 0; i < 200; ++i) many["example.com/label-" + std::to_string(i)] = "value";
  chunked.AddNode("n1", many);  // a body of several chunks
  KubeConfig config = Config();
  config.server = chunked.url();
  config.token_file.clear();
  auto got = kube::Api(*Client(config)).GetNode("n1");
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->status, 200);
  EXPECT_EQ(Json::parse(got->body)["metadata"]["labels"].size(), 200u);
}

TEST_F(KubeClientTest, SharedClientAnswersEachThreadWithItsOwnResponse) {
  // The DRA plugin's publisher and its gRPC handlers send at once through one client. A
  // one-connection client shared that way hands one thread another's response.
  constexpr int kThreads = 6;
  for (int i = 0; i < kThreads; ++i) server_->AddNode("node" + std::to_string(i), {});
  // A slow first answer keeps its connection busy while the others are sent.
  server_->InjectFault(
      {FakeApiServer::FaultKind::kDelay, 0, std::chrono::milliseconds(200), "", 0});
  auto api = MakeSharedKubeClient(Config());
  ASSERT_TRUE(api.ok()) << api.error().message;
  std::vector<std::thread> threads;
  std::atomic<int> right{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string name = "node" + std::to_string(i);
      for (int n = 0; n < 10; ++n) {
        auto r = (*api)->Send("GET", "/api/v1/nodes/" + name, "", "");
        ASSERT_TRUE(r.ok()) << r.error().message;
        ASSERT_EQ(r->status, 200);
        if (Json::parse(r->body)["metadata"]["name"] == name) ++right;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(right.load(), kThreads * 10);
}

TEST_F(KubeClientTest, SharedClientCancelEndsARequestInFlightAndEveryLaterOne) {
  server_->InjectFault({FakeApiServer::FaultKind::kHang, 0, std::chrono::seconds(30), "", 0});
  KubeConfig config = Config();
  config.timeout = std::chrono::seconds(30);  // only Cancel can end the hung request early
  auto api = MakeSharedKubeClient(config);
  ASSERT_TRUE(api.ok()) << api.error().message;
  std::promise<Result<ApiResponse>> hung;
  std::thread sender([&] { hung.set_value((*api)->Send("GET", "/api/v1/nodes/n1", "", "")); });
  ASSERT_TRUE(WaitUntil([&] { return !server_->Requests().empty(); }, std::chrono::seconds(10)));
  (*api)->Cancel();
  auto future = hung.get_future();
  // Far below the 30 s the request would otherwise hang for.
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  sender.join();
  auto r = future.get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("cancelled"), std::string::npos) << r.error().message;
  // A stop is no failure to retry.
  EXPECT_EQ(r.error().code, ErrorCode::kCancelled);
  EXPECT_FALSE(Retryable(r.error()));
  auto later = (*api)->Send("GET", "/api/v1/nodes/n1", "", "");
  ASSERT_FALSE(later.ok());
  EXPECT_NE(later.error().message.find("cancelled"), std::string::npos);
  EXPECT_EQ(later.error().code, ErrorCode::kCancelled);
  EXPECT_EQ(server_->Requests().size(), 1u);  // the later one never left
}

}  // namespace
}  // namespace edgefd::testing
