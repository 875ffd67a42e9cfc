// The gRPC link against a real server on a unix socket: bad frames, dying stages.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "edgefd/runtime/transport.h"
#include "edgefd/testing/files.h"
#include "pipeline.grpc.pb.h"

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
  odd.add_stamps(1);
  st = PushRaw({odd}, &reply);
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
      meta.stamp_count = 1;
      meta.stamps[0] = int64_t(seq);
      meta.stamps[1] = int64_t(seq) + 1;
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
    ASSERT_EQ(got.stamp_count, 1u);
    EXPECT_EQ(got.stamps[1], int64_t(seq) + 1);
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
  FrameMeta meta;
  meta.shape = shape_;
  meta.seq = 1;
  auto t0 = std::chrono::steady_clock::now();
  Status s = (*writer)->Publish(meta);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not reachable"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(10));
}

TEST_F(GrpcLink, ListenRejectsAnAddressItCannotServe) {
  auto r = ListenGrpc("unix:/nonexistent-dir/x.sock", shape_, Policy::kLatest);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("/nonexistent-dir/x.sock"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::runtime
