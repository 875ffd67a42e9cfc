// Who may push into a stage (issue 17, point 3): with a token file, a stream without the
// pipeline's token is refused before it can take the stage over or end its stream; a stage
// that listens where others can reach it without any authentication says so; and Abort()
// cuts short a gRPC send or connect.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/runtime/transport.h"
#include "edgefd/testing/files.h"
#include "pipeline.grpc.pb.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

namespace pb = ::edgefd::pipeline::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr char kToken[] = "k9mXQ2v7Lr4TzP0wYb8nJc3HsEa6UdFg";

class GrpcAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = "unix:" + dir_ / "stage.sock";
    security_.token_file = dir_.Write("token", std::string(kToken) + "\n").string();
  }

  /// One raw stream carrying `metadata` (key, value pairs): a frame, then end-of-stream.
  grpc::Status Intrude(const std::vector<std::pair<std::string, std::string>>& metadata,
                       uint64_t seq) {
    auto stub =
        pb::Stage::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    for (const auto& [k, v] : metadata) ctx.AddMetadata(k, v);
    pb::PushReply reply;
    auto stream = stub->Push(&ctx, &reply);
    pb::Frame f;
    f.set_seq(seq);
    f.set_height(uint32_t(shape_.h));
    f.set_width(uint32_t(shape_.w));
    f.set_channels(uint32_t(shape_.c));
    f.set_data(std::string(shape_.Bytes(), '\0'));
    pb::Frame end;
    end.set_end_of_stream(true);
    if (stream->Write(f)) (void)stream->Write(end);
    stream->WritesDone();
    return stream->Finish();
  }

  /// `writer` sends frame `seq` and `stage` gets it.
  void Deliver(FrameReader& stage, FrameWriter& writer, uint64_t seq) {
    FrameMeta meta, got;
    meta.shape = shape_;
    meta.seq = seq;
    ASSERT_TRUE(writer.Publish(meta).ok());
    const float* data = nullptr;
    ASSERT_EQ(stage.Next(&got, &data, seconds(10)), ReadResult::kFrame);
    EXPECT_EQ(got.seq, seq);
  }

  testing::TempDir dir_;
  std::string address_;
  LinkSecurity security_;
  const Shape shape_{4, 4, 1};
};

// The attack of the issue: the real upstream pauses for more than the 1 s after which a new
// stream may take over, and streams without the token push a frame and end-of-stream all the
// while. None gets in; the stage neither takes their frames nor ends; the real upstream goes on.
TEST_F(GrpcAuth, AStreamWithoutTheTokenNeverTakesTheStageOver) {
  auto stage = ListenGrpc(address_, shape_, Policy::kLatest, security_);
  ASSERT_TRUE(stage.ok()) << stage.error().message;
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(10), security_);
  ASSERT_TRUE(writer.ok()) << writer.error().message;
  ASSERT_NO_FATAL_FAILURE(Deliver(**stage, **writer, 1));
  FrameMeta got;
  const float* data = nullptr;

  const std::vector<std::vector<std::pair<std::string, std::string>>> intruders = {
      {},
      {{"authorization", "Bearer not-the-token-of-this-pipeline"}},
      {{"authorization", std::string("Bearer ") + kToken + "x"}},
      {{"authorization", kToken}},  // no "Bearer "
      {{"authorization", "Bearer "}},
      {{"authorization", "Bearer wrong"}, {"authorization", std::string("Bearer ") + kToken}},
  };
  // Well past the 1 s after which a silent upstream may be replaced.
  const auto until = Clock::now() + milliseconds(2500);
  uint64_t seq = 1000;
  for (size_t i = 0; Clock::now() < until; ++i) {
    grpc::Status st = Intrude(intruders[i % intruders.size()], ++seq);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << "intruder " << i % intruders.size() << ": " << st.error_message();
    const ReadResult r = (*stage)->Next(&got, &data, milliseconds(50));
    ASSERT_EQ(r, ReadResult::kTimeout)
        << "intruder " << i % intruders.size() << " got in (seq " << got.seq
        << ", closed: " << (r == ReadResult::kClosed) << ")";
  }
  Deliver(**stage, **writer, 2);
}

TEST_F(GrpcAuth, ASenderWithoutTheTokenIsRefusedOneWithItIsServed) {
  auto stage = ListenGrpc(address_, shape_, Policy::kLatest, security_);
  ASSERT_TRUE(stage.ok()) << stage.error().message;
  LinkSecurity other;
  other.token_file = dir_.Write("other", "another-pipeline-token-0123456789").string();
  FrameMeta meta, got;
  meta.shape = shape_;
  const float* data = nullptr;
  for (const LinkSecurity& s : {LinkSecurity{}, other}) {
    auto writer = ConnectGrpc(address_, shape_.Bytes(), milliseconds(500), s);
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    ++meta.seq;
    // The sender may not hear of the refusal before its frames are on the wire; the stage
    // never takes them, nor the end-of-stream.
    (void)(*writer)->Publish(meta);
    (void)(*writer)->Close();
    ASSERT_EQ((*stage)->Next(&got, &data, milliseconds(200)), ReadResult::kTimeout)
        << "token file '" << s.token_file << "'";
  }
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(10), security_);
  ASSERT_TRUE(writer.ok());
  ASSERT_NO_FATAL_FAILURE(Deliver(**stage, **writer, 100));
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kClosed);
}

TEST(LinkToken, ABadTokenFileIsNamedAndRefused) {
  testing::TempDir dir;
  struct Case {
    std::string name, text, says;
  } cases[] = {
      {"short", "abc\n", "16 to 1024"},
      {"spaces", "a token with spaces in it", "printable ASCII"},
      {"control", std::string("0123456789abcdef\x01"), "printable ASCII"},
      {"huge", std::string(5000, 'a'), "larger than 4 KiB"},
      {"empty", "", "16 to 1024"},
  };
  for (const Case& c : cases) {
    const std::string path = dir.Write(c.name, c.text).string();
    auto token = ReadLinkToken(path);
    ASSERT_FALSE(token.ok()) << c.name;
    EXPECT_NE(token.error().message.find("--token-file " + path), std::string::npos)
        << token.error().message;
    EXPECT_NE(token.error().message.find(c.says), std::string::npos) << token.error().message;
    LinkSecurity s;
    s.token_file = path;
    auto listen = ListenGrpc("unix:" + dir / "s.sock", Shape{4, 4, 1}, Policy::kLatest, s);
    EXPECT_FALSE(listen.ok()) << c.name;
    auto connect = ConnectGrpc("unix:" + dir / "s.sock", 64, seconds(1), s);
    EXPECT_FALSE(connect.ok()) << c.name;
  }
  auto missing = ReadLinkToken(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("cannot read"), std::string::npos);
  auto good = ReadLinkToken(dir.Write("good", std::string(kToken) + " \r\n").string());
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(*good, kToken);
  // A token on a shm link is a mistake the user should hear of.
  LinkSecurity s;
  s.token_file = dir / "good";
  EXPECT_FALSE(OpenWriter("shm:" + testing::UniqueName("auth"), Shape{4, 4, 1}, Policy::kLatest,
                          seconds(1), s)
                   .ok());
}

TEST(LinkToken, EqualityIsExact) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(ConstantTimeEquals(kToken, kToken));
  EXPECT_FALSE(ConstantTimeEquals(kToken, std::string(kToken) + "a"));
  EXPECT_FALSE(ConstantTimeEquals(std::string(kToken) + "a", kToken));
  EXPECT_FALSE(ConstantTimeEquals("", "a"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abce"));
  EXPECT_FALSE(ConstantTimeEquals(std::string("ab\0", 3), "ab"));
}

// A stage or sink listening as the manifests do (all interfaces, a TCP port) without a token
// or TLS says so; with a token, or on loopback or a unix socket, it does not.
TEST(GrpcAuthWarning, AStageOpenToAnyoneSaysSo) {
  testing::TempDir dir;
  const std::string token = dir.Write("token", kToken).string();
  const std::string model = "--model conv --width 64 --height 48 ";
  const std::string stage = "stage " + model + "--next 127.0.0.1:1 --listen ";
  const std::string sink = "sink " + model + "--timeout-ms 1 --listen ";
  struct Case {
    std::string args;
    bool warns;
  } cases[] = {
      {stage + "0.0.0.0:0", true},
      {sink + "0.0.0.0:0", true},
      {stage + "0.0.0.0:0 --token-file " + token, false},
      {sink + "0.0.0.0:0 --token-file " + token, false},
      {sink + "127.0.0.1:0", false},
      {sink + "unix:" + dir / "s.sock", false},
  };
  for (const Case& c : cases) {
    std::string out;
    if (c.args.rfind("stage", 0) == 0) {
      // A stage runs until stopped: once it says it listens, whatever it had to say is said.
      testing::Child child(testing::CommandLine(testing::PipelineBin(), c.args));
      EXPECT_TRUE(child.WaitFor([](const std::string&, const std::string& err) {
        return err.find("stage 0: layers") != std::string::npos;
      })) << c.args
          << ":\n"
          << child.err();
      (void)child.Terminate();
      out = child.out() + child.err();
    } else {
      int status = 0;
      out = testing::RunCli(c.args, &status);
      EXPECT_EQ(status, 1) << c.args << ":\n" << out;  // no frame came; not a usage error
    }
    const bool warned = out.find("UNAUTHENTICATED") != std::string::npos &&
                        out.find("--token-file") != std::string::npos;
    EXPECT_EQ(warned, c.warns) << c.args << ":\n" << out;
  }
}

// Abort() from another thread ends a send that waits for a next stage that does not read,
// and a connect to one that is not there, long before their 60 s timeouts.
TEST_F(GrpcAuth, AbortEndsAWaitingSendOrConnect) {
  const Shape big{256, 256, 1};
  auto stage = ListenGrpc(address_, big, Policy::kBlock);  // nobody ever calls Next
  ASSERT_TRUE(stage.ok());
  for (const std::string& target :
       {address_, "unix:" + dir_ / "nobody.sock", std::string("127.0.0.1:1")}) {
    auto writer = ConnectGrpc(target, big.Bytes(), seconds(60));
    ASSERT_TRUE(writer.ok()) << writer.error().message;
    std::atomic<int> sent{0};
    auto result = std::async(std::launch::async, [&]() -> Status {
      FrameMeta meta;
      meta.shape = big;
      for (meta.seq = 1;; ++meta.seq) {
        Status s = (*writer)->Publish(meta);
        if (!s) return s;
        sent.fetch_add(1);
      }
    });
    // Against the stage: once a few frames went, the next waits on flow control.
    const auto until = Clock::now() + seconds(10);
    while (target == address_ && sent.load() < 2 && Clock::now() < until) {
      std::this_thread::yield();
    }
    (*writer)->Abort();
    ASSERT_EQ(result.wait_for(seconds(20)), std::future_status::ready)
        << target << ": Publish still waits 20 s after Abort()";
    Status s = result.get();
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message.find("aborted"), std::string::npos) << s.error().message;
    EXPECT_FALSE((*writer)->Publish(FrameMeta{}).ok());
  }
}

// A stage stopping after Abort() still ends its live stream downstream.
TEST_F(GrpcAuth, AfterAbortALiveStreamStillCarriesEndOfStream) {
  auto stage = ListenGrpc(address_, shape_, Policy::kLatest);
  ASSERT_TRUE(stage.ok());
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(10));
  ASSERT_TRUE(writer.ok());
  ASSERT_NO_FATAL_FAILURE(Deliver(**stage, **writer, 1));
  (*writer)->Abort();
  EXPECT_TRUE((*writer)->Close().ok());
  FrameMeta got;
  const float* data = nullptr;
  EXPECT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kClosed);
}

}  // namespace
}  // namespace edgefd::runtime
