// HTTP/1.1 responses as the labeller's API client reads them from an untrusted server.
#include "edgefd/common/http_wire.h"

#include <gtest/gtest.h>

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

Result<HttpResponse> Read(const std::string& wire, size_t max = 1 << 20) {
  std::string pending;
  return ReadHttpResponse(Wire(wire), pending, max);
}

TEST(ReadHttpResponse, ContentLengthAndKeepAlive) {
  std::string pending;
  ReadFn read = Wire(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
      "HTTP/1.1 409 Conflict\r\nContent-Length: 1\r\nRetry-After: 3\r\n\r\nx");
  auto first = ReadHttpResponse(read, pending);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(first->body, "{}");
  EXPECT_TRUE(first->reusable);
  EXPECT_EQ(first->Header("content-type"), "application/json");
  auto second = ReadHttpResponse(read, pending);
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->status, 409);
  EXPECT_EQ(second->Header("retry-after"), "3");
}

TEST(ReadHttpResponse, ChunkedWithExtensionsAndTrailers) {
  auto r = Read(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;name=v\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->body, "hello, world!!!");
  EXPECT_TRUE(r->reusable);
}

TEST(ReadHttpResponse, BodyUntilCloseIsNotReusable) {
  auto r = Read("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\nboom");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->body, "boom");
  EXPECT_FALSE(r->reusable);
}

TEST(ReadHttpResponse, HostileOrBrokenResponsesAreErrors) {
  const std::string ok_head = "HTTP/1.1 200 OK\r\n";
  for (const std::string& wire : {
           std::string("SSH-2.0-OpenSSH_9.2\r\n\r\n"),
           std::string("HTTP/1.1 2000 OK\r\n\r\n"),
           std::string("HTTP/1.1 99 Low\r\n\r\n"),
           std::string("HTTP/1.1 200OK\r\n\r\n"),
           ok_head + "no colon here\r\n\r\n",
           ok_head + "Content-Length: -1\r\n\r\n",
           ok_head + "Content-Length: 12abc\r\n\r\n",
           ok_head + "Content-Length: 99999999999999999999999\r\n\r\n",
           ok_head + "Content-Length: 10\r\n\r\nshort",                           // truncated
           ok_head + "Transfer-Encoding: chunked\r\n\r\nzz\r\n",                  // bad chunk size
           ok_head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",  // no CRLF
           ok_head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",            // no last chunk
           ok_head + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
       }) {
    auto r = Read(wire);
    EXPECT_FALSE(r.ok()) << wire;
  }
}

TEST(ReadHttpResponse, LimitsHoldForEveryWayOfSendingABody) {
  const std::string big(2000, 'x');
  EXPECT_FALSE(Read("HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + big, 1000).ok());
  EXPECT_FALSE(Read("HTTP/1.1 200 OK\r\n\r\n" + big, 1000).ok());
  std::string chunks;
  for (int i = 0; i < 4; ++i) chunks += "1f4\r\n" + std::string(500, 'y') + "\r\n";
  EXPECT_FALSE(
      Read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + "0\r\n\r\n", 1000)
          .ok());
  EXPECT_FALSE(Read("HTTP/1.1 200 OK\r\nX-Long: " + big + "\r\n\r\n", 1000).ok());
  EXPECT_TRUE(
      Read("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + big.substr(0, 1000), 1000).ok());
}

TEST(ReadHttpResponse, NoBodyFor204AndHead) {
  std::string pending;
  auto r = ReadHttpResponse(Wire("HTTP/1.1 204 No Content\r\n\r\n"), pending);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->body.empty());
  auto head = ReadHttpResponse(Wire("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), pending,
                               1 << 20, /*head_only=*/true);
  ASSERT_TRUE(head.ok()) << head.error().message;
  EXPECT_TRUE(head->body.empty());
}

}  // namespace
}  // namespace edgefd
