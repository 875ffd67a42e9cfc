// The session against a runtime written here over the same framing: registration, a runtime
// that closes mid-frame or sends garbage, reconnection, a prompt stop. (tools/nri-peer plays
// the real runtime side in peer_test.cc.)
#include "edgefd/nri/session.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "edgefd/common/unique_fd.h"
#include "edgefd/nri/ttrpc.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/timing.h"
#include "fake_record.h"
#include "nri/api.pb.h"
#include "ttrpc/ttrpc.pb.h"

namespace edgefd::nri {
namespace {

namespace api = ::nri::pkg::api::v1alpha1;
using namespace std::chrono_literals;

// The runtime's end: a listening socket, and the plugin's connections on it.
class FakeRuntime {
 public:
  explicit FakeRuntime(const std::string& path) : listener_(::socket(AF_UNIX, SOCK_STREAM, 0)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(listener_.get(), 4), 0);
  }

  // The next connection of the plugin, within `timeout`.
  UniqueFd Accept(std::chrono::milliseconds timeout = 10s) {
    pollfd p{listener_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
    return UniqueFd(::accept(listener_.get(), nullptr, nullptr));
  }

  // The next ttrpc message the plugin sent on `conn`, within 10 s.
  static std::optional<TtrpcMessage> Read(int fd, uint32_t conn) {
    MuxDecoder mux;
    TtrpcDecoder ttrpc;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) != 1) continue;
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) return std::nullopt;
      mux.Feed(std::string_view(buf, static_cast<size_t>(n)));
      for (auto f = mux.Next(); f.ok() && *f; f = mux.Next()) {
        if ((*f)->conn == conn) ttrpc.Feed((*f)->payload);
      }
      auto m = ttrpc.Next();
      if (m.ok() && *m) return std::move(**m);
    }
    return std::nullopt;
  }

 private:
  UniqueFd listener_;
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.socket = dir_.path() / "nri.sock";
    options_.plugin_name = "edgefd-test";
    options_.plugin_index = "42";
    options_.max_backoff = 200ms;
  }
  void TearDown() override { Stop(); }

  void Start() {
    thread_ = std::thread([this] { Session(service_, metrics_, options_).Run(stop_.get()); });
  }
  // Stops the session and returns how long Run took to return.
  std::chrono::milliseconds Stop() {
    if (!thread_.joinable()) return 0ms;
    const auto start = std::chrono::steady_clock::now();
    uint64_t one = 1;
    EXPECT_EQ(::write(stop_.get(), &one, sizeof(one)), 8);
    thread_.join();
    EXPECT_EQ(::read(stop_.get(), &one, sizeof(one)), 8);  // ready for the next Start
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start);
  }

  testing::TempDir dir_;
  SessionOptions options_;
  Metrics metrics_;
  FakeRecord record_;
  NriService service_{{0, 1}, Policy::kExclusive, metrics_, record_};
  UniqueFd stop_{::eventfd(0, EFD_CLOEXEC)};
  std::thread thread_;
};

TEST_F(SessionTest, RegistersOnTheRuntimeServiceConnection) {
  FakeRuntime runtime(options_.socket.string());
  Start();
  UniqueFd conn = runtime.Accept();
  ASSERT_TRUE(conn.valid());
  std::optional<TtrpcMessage> m = FakeRuntime::Read(conn.get(), kRuntimeServiceConn);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->type, static_cast<uint8_t>(MessageType::kRequest));
  EXPECT_EQ(m->stream % 2, 1u);
  ::ttrpc::Request request;
  ASSERT_TRUE(request.ParseFromString(m->data));
  EXPECT_EQ(request.service(), "nri.pkg.api.v1alpha1.Runtime");
  EXPECT_EQ(request.method(), "RegisterPlugin");
  api::RegisterPluginRequest reg;
  ASSERT_TRUE(reg.ParseFromString(request.payload()));
  EXPECT_EQ(reg.plugin_name(), "edgefd-test");
  EXPECT_EQ(reg.plugin_idx(), "42");
}

TEST_F(SessionTest, ReconnectsAfterARuntimeThatClosesMidFrameOrSendsGarbage) {
  FakeRuntime runtime(options_.socket.string());
  Start();
  {
    UniqueFd conn = runtime.Accept();
    ASSERT_TRUE(conn.valid());
    ASSERT_TRUE(FakeRuntime::Read(conn.get(), kRuntimeServiceConn));
    const std::string frame = EncodeMux(kPluginServiceConn, std::string(100, 'x'));
    ASSERT_EQ(::write(conn.get(), frame.data(), 50), 50);
  }  // closed mid-frame
  {
    UniqueFd conn = runtime.Accept();
    ASSERT_TRUE(conn.valid()) << "no reconnection after the runtime closed mid-frame";
    ASSERT_TRUE(FakeRuntime::Read(conn.get(), kRuntimeServiceConn));
    // A frame header announcing far more than the limit: the plugin must hang up.
    const std::string garbage("\x00\x00\x00\x01\xff\xff\xff\xff", 8);
    ASSERT_EQ(::write(conn.get(), garbage.data(), garbage.size()), 8);
    char c;
    pollfd p{conn.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1);
    EXPECT_EQ(::read(conn.get(), &c, 1), 0) << "the plugin kept a connection that lost framing";
  }
  UniqueFd third = runtime.Accept();
  EXPECT_TRUE(third.valid()) << "no reconnection after garbage";
  EXPECT_GE(metrics_.protocol_errors.load(), 1u);
  EXPECT_FALSE(metrics_.connected);  // never registered: the fake runtime did not answer
}

TEST_F(SessionTest, WaitsForAMissingSocketAndConnectsWhenItAppears) {
  Start();
  // No socket yet: the session waits (inotify on the directory, or its backoff).
  FakeRuntime runtime(options_.socket.string());
  UniqueFd conn = runtime.Accept();
  EXPECT_TRUE(conn.valid());
}

TEST_F(SessionTest, StopsPromptlyWhileWaitingOrConnected) {
  Start();
  EXPECT_LT(Stop(), testing::Scaled(testing::kStopDeadline));  // waiting for a socket
  FakeRuntime runtime(options_.socket.string());
  Start();
  UniqueFd conn = runtime.Accept();
  ASSERT_TRUE(conn.valid());
  EXPECT_LT(Stop(), testing::Scaled(testing::kStopDeadline));  // connected, the runtime silent
}

}  // namespace
}  // namespace edgefd::nri
