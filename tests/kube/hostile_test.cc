// The client against API endpoints that are hostile or broken on purpose (issue 17's audit):
// each case is something the hand-written client before libcurl got wrong. Every case runs
// on 127.0.0.1 and on [::1].
#include <gtest/gtest.h>

#include <string>

#include "edgefd/common/json.h"
#include "edgefd/kube/api.h"
#include "edgefd/kube/client.h"
#include "edgefd/testing/fake_apiserver.h"
#include "hostile_server.h"

namespace edgefd::testing {
namespace {

class HostileTest : public ::testing::TestWithParam<bool> {
 protected:
  bool ipv6() const { return GetParam(); }
  void SetUp() override {
    if (ipv6() && !FakeApiServer::HasIpv6Loopback()) GTEST_SKIP() << "this machine has no ::1";
  }
  kube::KubeConfig Config(const HostileServer& server) const {
    kube::KubeConfig c;
    c.server = server.url();
    c.allow_insecure_http = true;
    c.source = "test";
    c.timeout = std::chrono::milliseconds(3000);
    return c;
  }
  // A server that answers every request with `response`, as it is.
  static HostileServer::Behaviour Answer(std::string response) {
    return [response](HostileServer::Conn& c, const std::string&) { c.Write(response); };
  }
  Result<kube::ApiResponse> Get(const HostileServer& server, const std::string& path = "/x") {
    auto client = kube::MakeKubeClient(Config(server));
    if (!client) return client.error();
    return (*client)->Send("GET", path, "", "");
  }
};

INSTANTIATE_TEST_SUITE_P(Loopback, HostileTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "ipv6" : "ipv4"; });

TEST_P(HostileTest, HeaderLinesWithoutEndAreCutOffEarly) {
  // The old client read 15 MB of these at full CPU and never reached its deadline.
  HostileServer server(
      [](HostileServer::Conn& c, const std::string&) {
        if (!c.Write("HTTP/1.1 200 OK\r\n")) return;
        const std::string lines = [] {
          std::string s;
          for (int i = 0; i < 256; ++i) s += "X-Same: value\r\n";
          return s;
        }();
        while (c.Write(lines)) {
        }
      },
      ipv6());
  ASSERT_TRUE(server.ok());
  auto r = Get(server);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("header"), std::string::npos) << r.error().message;
  // Whatever the kernel's socket buffers held; far below the 16 MiB the old client took in.
  EXPECT_LT(server.Written(), size_t{8} << 20);
}

TEST_P(HostileTest, ManyShortDistinctHeadersAreRefused) {
  // 15 MB of them peaked at 210 MB and were accepted.
  HostileServer server(
      [](HostileServer::Conn& c, const std::string&) {
        std::string out = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n";
        for (int i = 0; i < 1000; ++i) out += "X-" + std::to_string(i) + ": v\r\n";
        out += "\r\n{}";
        c.Write(out);
      },
      ipv6());
  ASSERT_TRUE(server.ok());
  auto r = Get(server);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("header lines"), std::string::npos) << r.error().message;
}

TEST_P(HostileTest, OneEndlessHeaderLineIsRefused) {
  HostileServer server(
      [](HostileServer::Conn& c, const std::string&) {
        if (!c.Write("HTTP/1.1 200 OK\r\nX-Long: ")) return;
        const std::string chunk(4096, 'a');
        while (c.Write(chunk)) {
        }
      },
      ipv6());
  ASSERT_TRUE(server.ok());
  auto r = Get(server);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(server.Written(), size_t{8} << 20);
}

TEST_P(HostileTest, ABodyOverTheLimitIsRefusedAsItArrives) {
  // 16 MB of '[' (a JSON bomb: 1.27 GB once parsed) is refused by size before it is parsed.
  for (bool with_length : {true, false}) {
    HostileServer server(
        [with_length](HostileServer::Conn& c, const std::string&) {
          const size_t size = 16 << 20;
          if (!c.Write(with_length ? "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(size) +
                                         "\r\n\r\n"
                                   : std::string("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"))) {
            return;
          }
          const std::string chunk(64 << 10, '[');
          for (size_t sent = 0; sent < size && c.Write(chunk); sent += chunk.size()) {
          }
        },
        ipv6());
    ASSERT_TRUE(server.ok());
    auto r = Get(server);
    ASSERT_FALSE(r.ok()) << with_length;
    EXPECT_NE(r.error().message.find("larger than"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().code, ErrorCode::kResourceExhausted);
  }
}

TEST_P(HostileTest, ATrickleEndsAtTheWholeRequestDeadline) {
  // A byte every 50 ms: each byte arriving would extend a per-read timeout for ever.
  HostileServer server(
      [](HostileServer::Conn& c, const std::string&) {
        if (!c.Write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")) return;
        while (c.Write("[") && c.Pause(50)) {
        }
      },
      ipv6());
  ASSERT_TRUE(server.ok());
  kube::KubeConfig config = Config(server);
  config.timeout = std::chrono::milliseconds(500);
  auto client = kube::MakeKubeClient(config);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Send("GET", "/x", "", "");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timed out"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_TRUE(Retryable(r.error()));
}

TEST_P(HostileTest, RetryAfterIsCapped) {
  // "Retry-After: 1000000000" on one 503 stopped the agent for good.
  for (const char* value : {"1000000000", "99999999999999999999999", "30"}) {
    HostileServer server(
        [value](HostileServer::Conn& c, const std::string&) {
          c.Write(std::string("HTTP/1.1 503 Service Unavailable\r\nRetry-After: ") + value +
                  "\r\nContent-Length: 0\r\n\r\n");
        },
        ipv6());
    ASSERT_TRUE(server.ok());
    auto r = Get(server);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(r->retry_after,
              std::string(value) == "30" ? std::chrono::seconds(30) : kube::kMaxRetryAfter)
        << value;
  }
}

TEST_P(HostileTest, ARedirectIsNotFollowed) {
  HostileServer server(
      [](HostileServer::Conn& c, const std::string& head) {
        if (head.rfind("GET /elsewhere", 0) == 0) {
          c.Write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
        } else {
          c.Write(
              "HTTP/1.1 307 Temporary Redirect\r\nLocation: /elsewhere\r\n"
              "Content-Length: 0\r\n\r\n");
        }
      },
      ipv6());
  ASSERT_TRUE(server.ok());
  auto r = Get(server);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 307);
  EXPECT_EQ(server.Heads().size(), 1u);
}

TEST_P(HostileTest, AnInterimContinueIsNotTheAnswer) {
  HostileServer server(
      Answer("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{}"),
      ipv6());
  ASSERT_TRUE(server.ok());
  auto client = kube::MakeKubeClient(Config(server));
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Send("PATCH", "/x", "{}", kube::kMergePatch);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 409);
}

TEST_P(HostileTest, TwoDifferentContentLengthsAreAnError) {
  HostileServer server(
      Answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}"), ipv6());
  ASSERT_TRUE(server.ok());
  auto r = Get(server);
  EXPECT_FALSE(r.ok() && r->body != "{}") << "a body of the wrong length was accepted";
}

TEST_P(HostileTest, AnHttpServerIsRefusedUnlessAllowedAndThenGetsNoToken) {
  HostileServer server(Answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"), ipv6());
  ASSERT_TRUE(server.ok());
  kube::KubeConfig config = Config(server);
  config.token = "secret-token";
  config.allow_insecure_http = false;
  auto refused = kube::MakeKubeClient(config);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("--allow-insecure-http"), std::string::npos)
      << refused.error().message;
  config.allow_insecure_http = true;
  auto allowed = kube::MakeKubeClient(config);
  ASSERT_TRUE(allowed.ok()) << allowed.error().message;
  auto r = (*allowed)->Send("GET", "/x", "", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(server.Heads().size(), 1u);
  EXPECT_EQ(server.Heads()[0].find("secret-token"), std::string::npos) << server.Heads()[0];
}

TEST_P(HostileTest, NamesCannotSplitARequestOrChangeItsPath) {
  // A claim name with CR/LF made the API server receive a DELETE of the caller's choosing.
  HostileServer server(Answer("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"), ipv6());
  ASSERT_TRUE(server.ok());
  auto client = kube::MakeKubeClient(Config(server));
  ASSERT_TRUE(client.ok());
  kube::Api api(**client);
  const std::string split = "c\r\n\r\nDELETE /api/v1/nodes/n1 HTTP/1.1\r\nHost: x";
  for (const std::string& name : {split, std::string("a/b"), std::string(".."), std::string("."),
                                  std::string("a\0b", 3), std::string("a%2Fb"), std::string("")}) {
    auto r = api.GetResourceClaim("v1", "default", name);
    ASSERT_FALSE(r.ok()) << name;
    // Bad input: never worth another try.
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << name;
    auto ns = api.GetResourceClaim("v1", name, "claim");
    EXPECT_FALSE(ns.ok()) << name;
  }
  // A raw path is checked as well, whoever built it.
  for (const std::string& path : {"/apis/x/" + split, std::string("/api/v1/nodes/../secrets"),
                                  std::string("/api/v1/nodes/%2e%2E/secrets"), std::string("/a b"),
                                  std::string("/a#b"), std::string("/a?b?c")}) {
    auto r = (*client)->Send("GET", path, "", "");
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument) << path;
  }
  EXPECT_TRUE(server.Heads().empty()) << server.Heads()[0];
  // '?' and other bytes a name may hold are escaped: one request, to the path asked for.
  auto q = api.GetResourceClaim("v1", "default", "a?watch=1 x");
  ASSERT_TRUE(q.ok()) << q.error().message;
  ASSERT_EQ(server.Heads().size(), 1u);
  EXPECT_EQ(server.Heads()[0].substr(0, server.Heads()[0].find("\r\n")),
            "GET /apis/resource.k8s.io/v1/namespaces/default/resourceclaims/a%3Fwatch%3D1%20x "
            "HTTP/1.1");
}

TEST(Proxy, HttpsProxyAndNoProxyFromTheEnvironmentAsClientGoHonoursThem) {
  HostileServer proxy([](HostileServer::Conn& c, const std::string&) {
    c.Write("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  });
  ASSERT_TRUE(proxy.ok());
  setenv("HTTPS_PROXY", proxy.url().c_str(), 1);
  kube::KubeConfig config;
  config.server = "https://kube.example:6443";
  config.token = "secret-token";
  config.timeout = std::chrono::milliseconds(3000);
  auto client = kube::MakeKubeClient(config);
  ASSERT_TRUE(client.ok()) << client.error().message;
  EXPECT_FALSE((*client)->Send("GET", "/api/v1/nodes/n1", "", "").ok());
  ASSERT_EQ(proxy.Heads().size(), 1u);
  // A tunnel: the proxy sees where to, never the request or its token.
  EXPECT_EQ(proxy.Heads()[0].rfind("CONNECT kube.example:6443 HTTP/1.1", 0), 0u)
      << proxy.Heads()[0];
  EXPECT_EQ(proxy.Heads()[0].find("secret-token"), std::string::npos);

  // NO_PROXY (here a CIDR) goes direct: to a closed port, and not through the proxy.
  setenv("NO_PROXY", "127.0.0.0/8", 1);
  config.server = "https://127.0.0.1:1";
  auto direct = kube::MakeKubeClient(config);
  ASSERT_TRUE(direct.ok()) << direct.error().message;
  EXPECT_FALSE((*direct)->Send("GET", "/api/v1/nodes/n1", "", "").ok());
  EXPECT_EQ(proxy.Heads().size(), 1u);
  unsetenv("HTTPS_PROXY");
  unsetenv("NO_PROXY");
}

}  // namespace
}  // namespace edgefd::testing
