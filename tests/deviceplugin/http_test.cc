#include "edgefd/deviceplugin/http.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "edgefd/deviceplugin/metrics.h"

namespace edgefd::deviceplugin {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Get(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  ::send(fd, request.data(), request.size(), 0);
  std::string out;
  char buf[4096];
  while (ssize_t n = ::recv(fd, buf, sizeof buf, 0)) {
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(HttpResponder, ServesMetricsAndProbes) {
  Metrics metrics;
  metrics.SetDevices("edgefd.io/little-cpu", 4, 0);
  metrics.CountAllocate("edgefd.io/little-cpu", true);
  metrics.CountAllocate("edgefd.io/little-cpu", false);
  HttpResponder http([&](const std::string& path) -> HttpResponse {
    if (path == "/metrics") return {200, "text/plain; version=0.0.4", metrics.Render()};
    if (path == "/healthz") return {200, "text/plain", "ok\n"};
    return {404, "text/plain", "not found\n"};
  });
  ASSERT_TRUE(http.Start("127.0.0.1:0"));
  ASSERT_GT(http.port(), 0);
  std::string m = Get(http.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_THAT(m, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(
      m,
      HasSubstr(
          "edgefd_deviceplugin_devices{resource=\"edgefd.io/little-cpu\",health=\"Healthy\"} 4"));
  EXPECT_THAT(m, HasSubstr("edgefd_deviceplugin_allocations_total{resource=\"edgefd.io/"
                           "little-cpu\",result=\"error\"} 1"));
  EXPECT_THAT(Get(http.port(), "GET /healthz HTTP/1.1\r\n\r\n"), HasSubstr("\r\n\r\nok\n"));
  EXPECT_THAT(Get(http.port(), "GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Get(http.port(), "POST /metrics HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  http.Stop();
}

TEST(HttpResponder, BadAddressIsAClearError) {
  HttpResponder http([](const std::string&) { return HttpResponse{}; });
  auto s = http.Start("no-port-here");
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("no-port-here"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
