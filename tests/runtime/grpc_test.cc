// The gRPC link against a real server on a unix socket: bad frames, dying stages, oversized
// messages, streams that never send, next stages that stop reading, and mutual TLS.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "edgefd/runtime/transport.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/pki.h"
#include "edgefd/testing/process.h"
#include "edgefd/testing/timing.h"
#include "pipeline.grpc.pb.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

namespace pb = ::edgefd::pipeline::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::TempDir;

class GrpcLink : public ::testing::Test {
 protected:
  void SetUp() override { address_ = "unix:" + dir_ / "stage.sock"; }

  /// Pushes `frames` on one raw stream and returns the stream's status.
  grpc::Status PushRaw(const std::vector<pb::Frame>& frames, pb::PushReply* reply) {
    auto channel = grpc::CreateChannel(address_, grpc::InsecureChannelCredentials());
    auto stub = pb::Stage::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    ctx.set_wait_for_ready(true);
    auto stream = stub->Push(&ctx, reply);
    for (const pb::Frame& f : frames) {
      if (!stream->Write(f)) break;
    }
    stream->WritesDone();
    return stream->Finish();
  }

  static pb::Frame Frame(uint64_t seq, Shape s, size_t bytes) {
    pb::Frame f;
    f.set_seq(seq);
    f.set_height(uint32_t(s.h));
    f.set_width(uint32_t(s.w));
    f.set_channels(uint32_t(s.c));
    f.set_data(std::string(bytes, '\0'));
    return f;
  }

  TempDir dir_;
  std::string address_;
  const Shape shape_{4, 4, 1};
  /// The first frame of shape_, as a source sends it.
  FrameMeta FirstFrame() const {
    FrameMeta meta;
    meta.shape = shape_;
    meta.seq = 1;
    return meta;
  }
};

TEST_F(GrpcLink, MalformedFramesAreRejectedWithAStatus) {
  auto reader = ListenGrpc(address_, shape_, Policy::kLatest);
  ASSERT_TRUE(reader.ok()) << reader.error().message;
  pb::PushReply reply;

  grpc::Status st = PushRaw({Frame(1, shape_, 10)}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("data is 10 bytes, expected 64"), std::string::npos)
      << st.error_message();

  st = PushRaw({Frame(1, {5, 4, 1}, 80)}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("this stage takes 4x4x1"), std::string::npos);

  pb::Frame odd = Frame(1, shape_, 64);
  odd.add_stage_times(1);
  st = PushRaw({odd}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // The per-stage times are bounded: three per stage, at most kMaxStages stages, durations in
  // [0, kMaxDurationNs] (a peer's clock reading passed off as a duration is refused).
  pb::Frame many = Frame(1, shape_, 64);
  for (int i = 0; i < 3 * (kMaxStages + 1); ++i) many.add_stage_times(1);
  st = PushRaw({many}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("stage times"), std::string::npos) << st.error_message();
  pb::Frame negative = Frame(1, shape_, 64);
  for (int64_t v : {int64_t(5), int64_t(-3599998000000), int64_t(5)}) negative.add_stage_times(v);
  st = PushRaw({negative}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("stage 0 times"), std::string::npos) << st.error_message();
  pb::Frame huge = Frame(1, shape_, 64);
  huge.set_source_send_ns(kMaxDurationNs + 1);
  st = PushRaw({huge}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  st = PushRaw({Frame(5, shape_, 64), Frame(3, shape_, 64)}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("backwards"), std::string::npos);

  // The stage survived all of that and still takes good frames.
  st = PushRaw({Frame(7, shape_, 64)}, &reply);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(reply.frames(), 1u);
  FrameMeta meta;
  const float* data = nullptr;
  ReadResult r = ReadResult::kTimeout;
  // The earlier streams' accepted frames (seq 5) may be newer-than-nothing; read until 7.
  for (int i = 0; i < 3 && meta.seq != 7; ++i) r = (*reader)->Next(&meta, &data, seconds(5));
  ASSERT_EQ(r, ReadResult::kFrame);
  EXPECT_EQ(meta.seq, 7u);
}

TEST_F(GrpcLink, UpstreamReportsADeadStageAndReconnectsToItsReplacement) {
  auto stage = ListenGrpc(address_, shape_, Policy::kBlock);
  ASSERT_TRUE(stage.ok());
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(10));
  ASSERT_TRUE(writer.ok());
  FrameMeta meta;
  meta.shape = shape_;
  meta.seq = 1;
  ASSERT_TRUE((*writer)->Publish(meta).ok());
  FrameMeta got;
  const float* data = nullptr;
  ASSERT_EQ((*stage)->Next(&got, &data, seconds(5)), ReadResult::kFrame);
  EXPECT_EQ(got.seq, 1u);

  stage->reset();  // the next stage dies

  // The upstream notices on a following send and says so (bounded: no hang).
  Status failure = Ok{};
  auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (failure.ok() && std::chrono::steady_clock::now() < deadline) {
    ++meta.seq;
    failure = (*writer)->Publish(meta);
  }
  ASSERT_FALSE(failure.ok()) << "publishing to a dead stage never failed";
  EXPECT_NE(failure.error().message.find(address_), std::string::npos) << failure.error().message;
  EXPECT_GE((*writer)->Drops(), 1u);

  // A replacement comes up at the same address; the upstream reconnects by itself.
  auto replacement = ListenGrpc(address_, shape_, Policy::kBlock);
  ASSERT_TRUE(replacement.ok()) << replacement.error().message;
  ++meta.seq;
  Status s = (*writer)->Publish(meta);
  ASSERT_TRUE(s.ok()) << s.error().message;
  ASSERT_EQ((*replacement)->Next(&got, &data, seconds(10)), ReadResult::kFrame);
  EXPECT_EQ(got.seq, meta.seq);
  EXPECT_EQ((*writer)->Reconnects(), 1u);
  ASSERT_TRUE((*writer)->Close().ok());
  EXPECT_EQ((*replacement)->Next(&got, &data, seconds(10)), ReadResult::kClosed);
}

TEST_F(GrpcLink, LargeFramesArriveIntactWithTheirFields) {
  // The writer encodes the frame's fields itself and sends its buffers without copying;
  // 720p frames, back to back from reused buffers, must parse as the Frames they were:
  // every value names its frame's sequence number, stamps and shape travel beside it.
  const Shape big{720, 1280, 1};
  const size_t n = big.Bytes() / sizeof(float);
  auto stage = ListenGrpc(address_, big, Policy::kBlock);
  ASSERT_TRUE(stage.ok());
  auto writer = ConnectGrpc(address_, big.Bytes(), seconds(10));
  ASSERT_TRUE(writer.ok());
  constexpr uint64_t kFrames = 24;
  std::thread producer([&] {
    for (uint64_t seq = 1; seq <= kFrames; ++seq) {
      float* out = (*writer)->Buffer();
      for (size_t i = 0; i < n; ++i) out[i] = float(seq * 1000 + i % 997);
      FrameMeta meta;
      meta.shape = big;
      meta.seq = seq;
      meta.t_source_ns = int64_t(seq) * 7;
      meta.source_clock = 0xC10C + seq;
      meta.source_send_ns = int64_t(seq) + 2;
      meta.stage_count = 1;
      meta.stages[0] = {int64_t(seq), int64_t(seq) + 1, int64_t(seq) + 3};
      ASSERT_TRUE((*writer)->Publish(meta).ok());
    }
    ASSERT_TRUE((*writer)->Close().ok());
  });
  for (uint64_t seq = 1; seq <= kFrames; ++seq) {
    FrameMeta got;
    const float* data = nullptr;
    ASSERT_EQ((*stage)->Next(&got, &data, seconds(20)), ReadResult::kFrame);
    ASSERT_EQ(got.seq, seq);
    EXPECT_EQ(got.t_source_ns, int64_t(seq) * 7);
    EXPECT_TRUE(got.shape == big);
    EXPECT_EQ(got.source_clock, 0xC10C + seq);
    EXPECT_EQ(got.source_send_ns, int64_t(seq) + 2);
    ASSERT_EQ(got.stage_count, 1u);
    EXPECT_EQ(got.stages[0].wait_ns, int64_t(seq));
    EXPECT_EQ(got.stages[0].compute_ns, int64_t(seq) + 1);
    EXPECT_EQ(got.stages[0].send_ns, int64_t(seq) + 3);
    size_t bad = 0;
    for (size_t i = 0; i < n; ++i) bad += data[i] != float(seq * 1000 + i % 997);
    EXPECT_EQ(bad, 0u) << "frame " << seq;
  }
  FrameMeta got;
  const float* data = nullptr;
  EXPECT_EQ((*stage)->Next(&got, &data, seconds(20)), ReadResult::kClosed);
  producer.join();
}

TEST_F(GrpcLink, PublishingToNothingFailsWithinTheReconnectTimeout) {
  auto writer = ConnectGrpc(address_, shape_.Bytes(), milliseconds(300));
  ASSERT_TRUE(writer.ok());
  auto t0 = std::chrono::steady_clock::now();
  Status s = (*writer)->Publish(FirstFrame());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not reachable"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(10));
}

// `run` stopped while its first stage was still starting (seen under qemu, where a stage
// takes a second to start): the source was dialling the stage's socket and went on for the
// whole reconnect timeout, 20 s, whatever Abort() said. An abort ends the wait at once.
TEST_F(GrpcLink, AbortEndsAPublishThatWaitsForANextStageNotYetThere) {
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(5));
  ASSERT_TRUE(writer.ok());
  auto publish = std::async(std::launch::async, [&] { return (*writer)->Publish(FirstFrame()); });
  // Nobody listens: it is still dialling (the reconnect timeout is 5 s).
  ASSERT_EQ(publish.wait_for(milliseconds(100)), std::future_status::timeout);
  (*writer)->Abort();
  ASSERT_EQ(publish.wait_for(testing::Scaled(milliseconds(500))), std::future_status::ready)
      << "Publish went on dialling after Abort()";
  Status s = publish.get();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("aborted"), std::string::npos) << s.error().message;
}

// Peak resident set of process `pid` in KiB (VmHWM), -1 when unknown.
long PeakRssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// The reproduction, scaled down: a sink that takes 2.8 KB frames is pushed a 64 MiB
// message. It must refuse it and stay about as small as it was (gRPC 1.51 buffers a message
// whole before checking its size, so the stage's memory quota is what stops this one).
TEST_F(GrpcLink, AnOversizedPushIsRefusedAndTheStageDoesNotGrow) {
  const Shape out{23, 31, 1};  // what a conv 64x48 sink takes
  testing::Child sink({testing::PipelineBin(), "sink", "--model", "conv", "--width", "64",
                       "--height", "48", "--listen", address_, "--timeout-ms", "60000"});
  pb::PushReply reply;
  ASSERT_TRUE(PushRaw({Frame(1, out, out.Bytes())}, &reply).ok()) << sink.err();  // it serves
  const long before = PeakRssKb(sink.pid());
  grpc::Status st = PushRaw({Frame(2, out, size_t(64) << 20)}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  const long after = PeakRssKb(sink.pid());
  ASSERT_GT(before, 0);
  EXPECT_LT(after - before, 16 * 1024)
      << "peak RSS went from " << before << " to " << after << " KiB";
  // Just over the frame plus the margin for its other fields: refused by size, not shape.
  st = PushRaw({Frame(3, out, out.Bytes() + 8192)}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_TRUE(PushRaw({Frame(4, out, out.Bytes())}, &reply).ok());  // and still serves
}

// An intruder opens a Push stream, sends one frame, and then nothing, holding the stream open.
// The real upstream must get its frames through all the same.
TEST_F(GrpcLink, ASilentStreamDoesNotStarveTheRealUpstream) {
  auto stage = ListenGrpc(address_, shape_, Policy::kLatest);
  ASSERT_TRUE(stage.ok()) << stage.error().message;
  auto stub = pb::Stage::NewStub(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  grpc::ClientContext silent_context;
  silent_context.set_wait_for_ready(true);
  pb::PushReply silent_reply;
  auto silent = stub->Push(&silent_context, &silent_reply);
  ASSERT_TRUE(silent->Write(Frame(1, shape_, shape_.Bytes())));
  FrameMeta got;
  const float* data = nullptr;
  ASSERT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kFrame);  // it was taken

  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(2));
  ASSERT_TRUE(writer.ok());
  FrameMeta meta;
  meta.shape = shape_;
  bool delivered = false;
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  for (meta.seq = 100; !delivered && std::chrono::steady_clock::now() < deadline; ++meta.seq) {
    (void)(*writer)->Publish(meta);  // refused while the silent stream may still be alive
    delivered =
        (*stage)->Next(&got, &data, milliseconds(20)) == ReadResult::kFrame && got.seq >= 100;
  }
  ASSERT_TRUE(delivered) << "a stream that sends nothing kept the real upstream out for 10 s";
  EXPECT_FALSE(silent->Finish().ok());  // the silent stream was ended
}

// While the upstream delivers, another stream is refused at once and the upstream carries on.
TEST_F(GrpcLink, ASecondStreamIsRefusedWhileTheUpstreamDelivers) {
  auto stage = ListenGrpc(address_, shape_, Policy::kLatest);
  ASSERT_TRUE(stage.ok());
  auto writer = ConnectGrpc(address_, shape_.Bytes(), seconds(10));
  ASSERT_TRUE(writer.ok());
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread upstream([&] {
    FrameMeta meta;
    meta.shape = shape_;
    for (meta.seq = 1; !stop.load(); ++meta.seq) {
      if ((*writer)->Publish(meta).ok()) sent.store(meta.seq);
      std::this_thread::yield();
    }
  });
  FrameMeta got;
  const float* data = nullptr;
  ASSERT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kFrame);
  pb::PushReply reply;
  grpc::Status st = PushRaw({Frame(1u << 30, shape_, shape_.Bytes())}, &reply);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  const uint64_t before = got.seq;
  ASSERT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kFrame);
  EXPECT_GT(got.seq, before);
  EXPECT_LT(got.seq, uint64_t(1) << 30);  // the refused stream's frame never arrived
  stop.store(true);
  upstream.join();
}

// A next stage that stops taking frames (stuck, or an intruder that never reads) must not hang
// the sender: the send fails within the reconnect timeout.
TEST_F(GrpcLink, PublishingToAStageThatStoppedReadingFailsWithinTheTimeout) {
  const Shape big{256, 256, 1};
  auto stage = ListenGrpc(address_, big, Policy::kBlock);  // nobody ever calls Next
  ASSERT_TRUE(stage.ok());
  auto writer = ConnectGrpc(address_, big.Bytes(), milliseconds(500));
  ASSERT_TRUE(writer.ok());
  auto result = std::async(std::launch::async, [&]() -> Status {
    FrameMeta meta;
    meta.shape = big;
    for (meta.seq = 1; meta.seq < 10000; ++meta.seq) {
      Status s = (*writer)->Publish(meta);
      if (!s) return s;
    }
    return Ok{};
  });
  ASSERT_EQ(result.wait_for(seconds(30)), std::future_status::ready)
      << "Publish still waits for a next stage that stopped reading 30 s ago";
  Status s = result.get();
  ASSERT_FALSE(s.ok());
  // Either the send deadline fires, or first (under qemu, where the sender outruns the
  // watchdog) the stage's memory quota refuses the stream it no longer drains: both name the
  // next stage, and both are a failure instead of a hang.
  const std::string& m = s.error().message;
  EXPECT_NE(m.find(address_), std::string::npos) << m;
  EXPECT_TRUE(m.find("took no frame for 500 ms") != std::string::npos ||
              m.find("code 8") != std::string::npos)
      << m;
}

// A next stage that stops answering without closing its socket (frozen, or its node gone):
// the kernel keeps taking bytes for a while, so only keepalive finds it before the send
// deadline. Here the sink is stopped with SIGSTOP and the sender's pings go unanswered.
TEST_F(GrpcLink, ANextStageThatStopsAnsweringIsFoundByKeepalive) {
  const Shape out{23, 31, 1};  // what a conv 64x48 sink takes
  testing::Child sink({testing::PipelineBin(), "sink", "--model", "conv", "--width", "64",
                       "--height", "48", "--listen", address_, "--timeout-ms", "60000"});
  pb::PushReply reply;
  ASSERT_TRUE(PushRaw({Frame(1, out, out.Bytes())}, &reply).ok()) << sink.err();  // it serves
  auto writer = ConnectGrpc(address_, out.Bytes(), seconds(60), {},
                            GrpcKeepalive{milliseconds(200), milliseconds(300)});
  ASSERT_TRUE(writer.ok());
  FrameMeta meta;
  meta.shape = out;
  meta.seq = 2;
  ASSERT_TRUE((*writer)->Publish(meta).ok());
  sink.Signal(SIGSTOP);
  std::atomic<bool> give_up{false};
  auto result = std::async(std::launch::async, [&]() -> Status {
    for (meta.seq = 3; !give_up.load(); ++meta.seq) {
      Status s = (*writer)->Publish(meta);
      if (!s) return s;
      std::this_thread::sleep_for(milliseconds(10));  // a camera's pace, not a test's wait
    }
    return Ok{};
  });
  const bool found = result.wait_for(seconds(10)) == std::future_status::ready;
  give_up.store(true);
  sink.Signal(SIGKILL);  // unblocks a send that waits on the frozen sink
  Status s = result.get();
  ASSERT_TRUE(found) << "the sender still sends into a sink frozen 10 s ago";
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("stream broke"), std::string::npos) << s.error().message;
}

class GrpcTls : public GrpcLink {
 protected:
  static void SetUpTestSuite() {
    auto pki = testing::TestPki::Create(testing::MakeTempDir("edgefd-grpc-pki"));
    ASSERT_TRUE(pki.ok()) << pki.error().message;
    pki_ = new testing::TestPki(*pki);
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(pki_->dir);
    delete pki_;
  }
  static LinkSecurity Server() {
    return {pki_->server_cert.string(), pki_->server_key.string(), pki_->ca_cert.string(), ""};
  }
  static LinkSecurity Client() {
    return {pki_->client_cert.string(), pki_->client_key.string(), pki_->ca_cert.string(), ""};
  }
  static inline testing::TestPki* pki_ = nullptr;
};

TEST_F(GrpcTls, OnlyClientsWithACertificateFromTheCaAreServed) {
  auto stage = ListenGrpc("127.0.0.1:0", shape_, Policy::kLatest, Server());
  ASSERT_TRUE(stage.ok()) << stage.error().message;
  const std::string target = (*stage)->Address();
  FrameMeta meta;
  meta.shape = shape_;
  meta.seq = 1;
  {
    auto client = ConnectGrpc(target, shape_.Bytes(), seconds(10), Client());
    ASSERT_TRUE(client.ok()) << client.error().message;
    Status s = (*client)->Publish(meta);
    ASSERT_TRUE(s.ok()) << s.error().message;
    FrameMeta got;
    const float* data = nullptr;
    ASSERT_EQ((*stage)->Next(&got, &data, seconds(10)), ReadResult::kFrame);
    EXPECT_EQ(got.seq, 1u);
  }
  const LinkSecurity intruder = {pki_->other_client_cert.string(), pki_->other_client_key.string(),
                                 pki_->ca_cert.string(), ""};
  const LinkSecurity distrustful = {pki_->client_cert.string(), pki_->client_key.string(),
                                    pki_->other_ca_cert.string(), ""};
  for (const LinkSecurity& tls : {intruder, LinkSecurity{}, distrustful}) {
    auto client = ConnectGrpc(target, shape_.Bytes(), milliseconds(500), tls);
    ASSERT_TRUE(client.ok()) << client.error().message;
    ++meta.seq;
    Status s = (*client)->Publish(meta);
    ASSERT_FALSE(s.ok()) << "client with cert '" << tls.cert << "', CA '" << tls.ca << "' served";
    EXPECT_NE(s.error().message.find("not reachable"), std::string::npos) << s.error().message;
  }
  FrameMeta got;
  const float* data = nullptr;
  EXPECT_EQ((*stage)->Next(&got, &data, milliseconds(200)), ReadResult::kTimeout);
}

TEST_F(GrpcTls, MissingOrPartialFilesAreNamed) {
  LinkSecurity half_files;
  half_files.cert = pki_->server_cert.string();
  auto half = ListenGrpc("127.0.0.1:0", shape_, Policy::kLatest, half_files);
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.error().message.find("go together"), std::string::npos);
  LinkSecurity missing = Client();
  missing.key = dir_ / "nope.key";
  auto client = ConnectGrpc("127.0.0.1:1", shape_.Bytes(), seconds(1), missing);
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.error().message.find("--tls-key " + missing.key + ": cannot read"),
            std::string::npos)
      << client.error().message;
  LinkSecurity not_pem = Server();
  not_pem.ca = dir_.Write("ca.crt", "hello").string();
  auto server = ListenGrpc("127.0.0.1:0", shape_, Policy::kLatest, not_pem);
  ASSERT_FALSE(server.ok());
  EXPECT_NE(server.error().message.find("not PEM"), std::string::npos) << server.error().message;
}

TEST_F(GrpcTls, SinkSourceAndStageTakeTheTlsFlags) {
  const std::string model = "--model conv --width 64 --height 48 ";
  const std::string server = " --tls-cert " + pki_->server_cert.string() + " --tls-key " +
                             pki_->server_key.string() + " --tls-ca " + pki_->ca_cert.string();
  int status = 0;
  // Serves with them (then gives up for want of frames: exit 1, not a usage error).
  std::string out =
      testing::RunCli("sink " + model + "--listen 127.0.0.1:0 --timeout-ms 1" + server, &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("no frame"), std::string::npos) << out;
  out = testing::RunCli("source " + model + "--next 127.0.0.1:1 --frames 1 --tls-cert " +
                            pki_->client_cert.string() + " --tls-key " + (dir_ / "nope.key") +
                            " --tls-ca " + pki_->ca_cert.string(),
                        &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("--tls-key " + (dir_ / "nope.key") + ": cannot read"), std::string::npos)
      << out;
  out = testing::RunCli("stage " + model + "--listen 127.0.0.1:0 --next 127.0.0.1:1 --tls-cert " +
                            pki_->server_cert.string(),
                        &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("go together"), std::string::npos) << out;
}

TEST_F(GrpcLink, ListenRejectsAnAddressItCannotServe) {
  auto r = ListenGrpc("unix:/nonexistent-dir/x.sock", shape_, Policy::kLatest);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent-dir/x.sock"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::runtime
