// The health endpoint every daemon serves, against slow, silent and numerous clients: probes
// are answered at once whatever the others do, and stopping never waits for a client.
#include "edgefd/common/http_endpoint.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/health.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/testing/http.h"
#include "edgefd/testing/timing.h"

namespace edgefd {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Clock = std::chrono::steady_clock;

std::unique_ptr<HttpEndpoint> Start(HttpEndpointLimits limits = {}) {
  auto ep = HttpEndpoint::Start(
      "127.0.0.1:0", [](std::string_view path) { return HealthReply({}, path); }, "--metrics-addr",
      limits);
  EXPECT_TRUE(ep.ok()) << ep.error().message;
  return ep.ok() ? std::move(*ep) : nullptr;
}

// A client that connects, sends `prefix` (an unfinished request, or nothing) and goes silent.
UniqueFd SlowClient(uint16_t port, const std::string& prefix) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  if (!prefix.empty()) send(fd.get(), prefix.data(), prefix.size(), MSG_NOSIGNAL);
  return fd;
}

// Waits until the server has accepted every connection made to `port` so far: the listening
// socket's accept queue (its rx_queue in /proc/net/tcp) is empty. A connection made after that
// is accepted in a later round of the server's loop than these.
bool AcceptQueueDrained(uint16_t port, milliseconds limit) {
  char local[16];
  std::snprintf(local, sizeof local, ":%04X ", unsigned(port));
  const auto deadline = Clock::now() + limit;
  do {
    std::ifstream tcp("/proc/net/tcp");
    std::string line;
    bool listening = false, empty = false;
    while (std::getline(tcp, line)) {
      // "  sl  local_address rem_address   st tx_queue:rx_queue ..."; 0A is LISTEN.
      std::istringstream fields(line);
      std::string sl, local_address, remote, state, queues;
      fields >> sl >> local_address >> remote >> state >> queues;
      if (state != "0A" || (local_address + " ").find(local) == std::string::npos) continue;
      listening = true;
      empty = queues.size() > 9 && queues.substr(9) == "00000000";
    }
    if (!listening) return false;  // no /proc/net/tcp, or IPv6 only: nothing to wait on
    if (empty) return true;
    std::this_thread::yield();
  } while (Clock::now() < deadline);
  return false;
}

std::vector<UniqueFd> SlowLoris(uint16_t port, int n) {
  const std::string prefixes[] = {"", "G", "GET /healthz HTTP/1.1\r\n",
                                  "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: aaaa"};
  std::vector<UniqueFd> out;
  for (int i = 0; i < n; ++i) out.push_back(SlowClient(port, prefixes[i % 4]));
  return out;
}

// The kubelet's default probe timeout (timeoutSeconds: 1), scaled for emulation: a probe that
// takes longer fails and, repeated, restarts a healthy daemon.
milliseconds ProbeTimeout() { return testing::Scaled(seconds(1)); }

// Whether the server has hung up on `fd` (end of stream or reset), waiting up to `limit`.
bool HungUp(int fd, milliseconds limit) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, int(limit.count())) <= 0) return false;
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

TEST(HttpEndpoint, AnswersHealthzWhileSlowClientsHoldConnections) {
  HttpEndpointLimits limits;
  limits.request_deadline = seconds(30);  // the slow clients stay for the whole test
  auto ep = Start(limits);
  ASSERT_NE(ep, nullptr);
  std::vector<UniqueFd> slow = SlowLoris(ep->port(), 8);
  for (int round = 0; round < 5; ++round) {
    const auto t0 = Clock::now();
    const std::string reply = testing::HttpGet(ep->port(), "/healthz", ProbeTimeout());
    const auto took = Clock::now() - t0;
    EXPECT_THAT(reply, StartsWith("HTTP/1.1 200")) << "round " << round;
    // Far below what one silent client costs an endpoint that serves connections in turn (its
    // deadline); the 100 ms target itself is measured in bench/common/health_bench.
    EXPECT_LT(took, ProbeTimeout()) << "round " << round;
  }
  // They were all still there, unanswered: the probes really went past them.
  for (const UniqueFd& fd : slow) EXPECT_FALSE(HungUp(fd.get(), milliseconds(0)));
}

TEST(HttpEndpoint, DropsAClientThatTricklesAtTheRequestDeadline) {
  HttpEndpointLimits limits;
  limits.request_deadline = milliseconds(300);
  auto ep = Start(limits);
  ASSERT_NE(ep, nullptr);
  UniqueFd fd = SlowClient(ep->port(), "GET /healthz HTTP/1.1\r\nX-Trickle: ");
  const auto t0 = Clock::now();
  // A byte every 50 ms (each wait is for the hang-up): a per-read timeout would never fire.
  bool hung_up = false;
  for (int i = 0; i < 200 && !hung_up; ++i) {
    hung_up = send(fd.get(), "x", 1, MSG_NOSIGNAL) != 1 || HungUp(fd.get(), milliseconds(50));
  }
  EXPECT_TRUE(hung_up) << "a client sending a byte every 50 ms kept its connection for 10 s";
  EXPECT_LT(Clock::now() - t0, testing::Scaled(seconds(3)));
}

TEST(HttpEndpoint, StopsWithinASecondWhateverTheClientsDo) {
  auto ep = Start();
  ASSERT_NE(ep, nullptr);
  std::vector<UniqueFd> slow = SlowLoris(ep->port(), 8);
  // They are being served (or waited on) once a probe got through.
  ASSERT_THAT(testing::HttpGet(ep->port(), "/healthz", seconds(10)), StartsWith("HTTP/1.1 200"));
  const auto t0 = Clock::now();
  ep.reset();
  EXPECT_LT(Clock::now() - t0, testing::Scaled(seconds(1)));
  for (const UniqueFd& fd : slow) EXPECT_TRUE(HungUp(fd.get(), testing::Scaled(seconds(1))));
}

TEST(HttpEndpoint, ConnectionsBeyondTheLimitDropTheSilentFirstThenTheOldest) {
  HttpEndpointLimits limits;
  limits.request_deadline = seconds(30);
  limits.max_connections = 4;
  auto ep = Start(limits);
  ASSERT_NE(ep, nullptr);
  std::vector<UniqueFd> slow = SlowLoris(ep->port(), 10);
  // A connection is never evicted in the round that accepted it (each client gets one poll):
  // had the last clients come in the probe's burst, the silent one would rightly stay. On a
  // loaded machine they did (1 run in 3); the probe now comes once they are all accepted.
  ASSERT_TRUE(AcceptQueueDrained(ep->port(), testing::Scaled(seconds(5))));
  EXPECT_THAT(testing::HttpGet(ep->port(), "/healthz", seconds(1)), StartsWith("HTTP/1.1 200"));
  std::vector<bool> dropped;
  for (const UniqueFd& fd : slow)
    dropped.push_back(HungUp(fd.get(), testing::Scaled(milliseconds(200))));
  EXPECT_EQ(std::count(dropped.begin(), dropped.end(), true), 10 + 1 - limits.max_connections);
  EXPECT_TRUE(dropped[8]) << "a client that sent nothing outlived older ones that did";
  EXPECT_FALSE(dropped[9]);  // the newest stay
}

// A client on the node's network opens connections as fast as it can and sends nothing,
// holding the latest few hundred: the kubelet's probes beside it must all be answered, or it
// restarts a healthy daemon. (Dropping the oldest connection when the table was full dropped
// the probes accepted in the same burst: 3-10 % failed.)
TEST(HttpEndpoint, ProbesGetThroughAFloodOfIdleConnections) {
  auto ep = Start();
  ASSERT_NE(ep, nullptr);
  std::atomic<bool> stop{false};
  std::atomic<int> opened{0};
  auto flooder = [&] {
    std::deque<UniqueFd> held;
    // Bounded, so a slow run never exhausts the machine's ephemeral ports.
    for (int i = 0; i < 20000 && !stop; ++i) {
      held.push_back(SlowClient(ep->port(), ""));
      ++opened;
      if (held.size() > 256) held.pop_front();
    }
  };
  std::thread flood[] = {std::thread(flooder), std::thread(flooder)};
  while (opened < 512) std::this_thread::yield();  // twice the table before the first probe
  int failed = 0;
  std::string failure;
  Clock::duration slowest{};
  for (int i = 0; i < 200; ++i) {
    const auto t0 = Clock::now();
    std::string reply = testing::HttpGet(ep->port(), "/healthz", ProbeTimeout());
    const auto took = Clock::now() - t0;
    slowest = std::max(slowest, took);
    if (reply.rfind("HTTP/1.1 200", 0) != 0 || took > ProbeTimeout()) {
      ++failed;
      failure = "probe " + std::to_string(i) + " got '" + reply.substr(0, 40) + "'";
    }
  }
  stop = true;
  for (std::thread& t : flood) t.join();
  EXPECT_EQ(failed, 0) << "last failure: " << failure << "; " << opened
                       << " flood connections opened; slowest probe "
                       << std::chrono::duration_cast<milliseconds>(slowest).count() << " ms";
}

TEST(HttpEndpoint, AnswersHeadBadRequestsAndOtherMethods) {
  auto ep = Start();
  ASSERT_NE(ep, nullptr);
  auto ask = [&](const std::string& request) {
    UniqueFd fd = SlowClient(ep->port(), request);
    std::string out;
    char buf[4096];
    for (;;) {  // to the server's close (HungUp would eat the first byte of the reply)
      pollfd p{fd.get(), POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) break;
      ssize_t n = recv(fd.get(), buf, sizeof buf, 0);
      if (n <= 0) break;
      out.append(buf, size_t(n));
    }
    return out;
  };
  std::string head = ask("HEAD /healthz HTTP/1.1\r\n\r\n");
  EXPECT_THAT(head, StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(head, HasSubstr("Content-Length: 3\r\n"));
  EXPECT_EQ(head.substr(head.size() - 4), "\r\n\r\n");  // no body
  EXPECT_THAT(ask("POST /healthz HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(ask("nonsense\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(ask("GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(ask("GET /readyz?verbose HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(ask("GET /x HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"),
              StartsWith("HTTP/1.1 400"));
}

}  // namespace
}  // namespace edgefd
