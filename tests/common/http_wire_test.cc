// HTTP/1.1 requests as the health/metrics endpoint and the tests' API server read them from an
// untrusted client (the API client's half of HTTP is libcurl's: tests/kube).
#include "edgefd/common/http_wire.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace edgefd {
namespace {

// A connection that delivers `wire` in pieces of at most `step` bytes, then ends.
ReadFn Wire(std::string wire, size_t step = 7) {
  auto at = std::make_shared<size_t>(0);
  return [wire = std::move(wire), step, at](char* buf, size_t n) -> long {
    size_t k = std::min({n, step, wire.size() - *at});
    wire.copy(buf, k, *at);
    *at += k;
    return static_cast<long>(k);
  };
}

TEST(ReadHttpRequest, PipelinedRequestsAndACleanClose) {
  std::string pending;
  ReadFn read = Wire(
      "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "PATCH /api/v1/nodes/n1 HTTP/1.1\r\nContent-Type: application/merge-patch+json\r\n"
      "Content-Length: 2\r\n\r\n{}");
  auto first = ReadHttpRequest(read, pending);
  ASSERT_TRUE(first.ok()) << first.error().message;
  ASSERT_TRUE(first->has_value());
  EXPECT_EQ((*first)->method, "GET");
  EXPECT_EQ((*first)->Path(), "/healthz");
  EXPECT_EQ((*first)->Header("host"), "a");
  auto second = ReadHttpRequest(read, pending);
  ASSERT_TRUE(second.ok()) << second.error().message;
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->body, "{}");
  EXPECT_EQ((*second)->Header("content-type"), "application/merge-patch+json");
  auto end = ReadHttpRequest(read, pending);
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST(ReadHttpRequest, BrokenOrOversizedRequestsAreErrors) {
  for (const std::string& wire :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET / HTTP/1.1\r\nno colon\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
        std::string("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n"),
        std::string("GET / HTTP/1.1\r\nHost: a\r\n"),
        "GET / HTTP/1.1\r\nX: " + std::string(8192, 'a') + "\r\n\r\n"}) {
    std::string pending;
    auto r = ReadHttpRequest(Wire(wire), pending, 4096);
    EXPECT_FALSE(r.ok()) << wire.substr(0, 60);
  }
}

}  // namespace
}  // namespace edgefd
