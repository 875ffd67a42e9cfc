// gRPC links: the Stage service (receiving end) and a pushing client (sending end). Messages
// are reused on both sides so the steady state allocates nothing of frame size.
#include <grpcpp/grpcpp.h>

#include <cstring>
#include <mutex>

#include "edgefd/runtime/transport.h"
#include "pipeline.grpc.pb.h"

namespace edgefd::runtime {
namespace {

namespace pb = ::edgefd::pipeline::v1;

grpc::Status Invalid(uint64_t seq, const std::string& what) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "frame seq " + std::to_string(seq) + ": " + what);
}

/// Validates pushed frames and hands them to the stage's input mailbox.
class StageService final : public pb::Stage::Service {
 public:
  StageService(Shape expected, FrameWriter* mailbox) : expected_(expected), mailbox_(mailbox) {}

  grpc::Status Push(grpc::ServerContext*, grpc::ServerReader<pb::Frame>* reader,
                    pb::PushReply* reply) override {
    // One upstream feeds a stage; a reconnecting upstream waits for its stale stream to end.
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t frames = 0;
    while (reader->Read(&frame_)) {
      if (frame_.end_of_stream()) {
        (void)mailbox_->Close();
        break;
      }
      Shape s{int(frame_.height()), int(frame_.width()), int(frame_.channels())};
      if (!(s == expected_)) {
        return Invalid(frame_.seq(), "shape " + s.ToString() + ", this stage takes " +
                                         expected_.ToString());
      }
      if (frame_.data().size() != expected_.Bytes()) {
        return Invalid(frame_.seq(), "data is " + std::to_string(frame_.data().size()) +
                                         " bytes, expected " + std::to_string(expected_.Bytes()) +
                                         " float32 for " + s.ToString());
      }
      if (frame_.stamps_size() % 2 != 0 || frame_.stamps_size() > 2 * (kMaxStages - 1)) {
        return Invalid(frame_.seq(), std::to_string(frame_.stamps_size()) +
                                         " stamps, expected an even number up to " +
                                         std::to_string(2 * (kMaxStages - 1)));
      }
      if (frames > 0 && frame_.seq() <= last_seq_) {
        return Invalid(frame_.seq(), "sequence went backwards (after " +
                                         std::to_string(last_seq_) + ")");
      }
      last_seq_ = frame_.seq();
      FrameMeta meta;
      meta.seq = frame_.seq();
      meta.t_source_ns = frame_.t_source_ns();
      meta.shape = s;
      meta.stamp_count = uint32_t(frame_.stamps_size() / 2);
      for (int i = 0; i < frame_.stamps_size(); ++i) meta.stamps[i] = frame_.stamps(i);
      std::memcpy(mailbox_->Buffer(), frame_.data().data(), expected_.Bytes());
      (void)mailbox_->Publish(meta);
      ++frames;
    }
    reply->set_frames(frames);
    return grpc::Status::OK;
  }

 private:
  Shape expected_;
  FrameWriter* mailbox_;
  std::mutex mu_;
  pb::Frame frame_;  // reused: its data string keeps its capacity between frames
  uint64_t last_seq_ = 0;
};

class GrpcReader final : public FrameReader {
 public:
  static Result<std::unique_ptr<FrameReader>> Listen(const std::string& address, Shape expected,
                                                     Policy policy) {
    auto r = std::unique_ptr<GrpcReader>(new GrpcReader());
    r->link_ = MakeInprocLink(expected.Bytes(), policy);
    r->service_ = std::make_unique<StageService>(expected, r->link_.writer.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
    builder.SetMaxReceiveMessageSize(-1);
    builder.RegisterService(r->service_.get());
    r->server_ = builder.BuildAndStart();
    if (!r->server_) return Error{"--listen " + address + ": cannot serve gRPC there"};
    r->address_ = address;
    if (address.rfind("unix:", 0) != 0) {
      size_t colon = address.rfind(':');
      if (port <= 0) return Error{"--listen " + address + ": cannot bind"};
      r->address_ = address.substr(0, colon + 1) + std::to_string(port);
    }
    return std::unique_ptr<FrameReader>(std::move(r));
  }

  ~GrpcReader() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  ReadResult Next(FrameMeta* meta, const float** data,
                  std::chrono::milliseconds timeout) override {
    return link_.reader->Next(meta, data, timeout);
  }
  uint64_t Drops() const override { return link_.reader->Drops(); }
  std::string Address() const override { return address_; }

 private:
  GrpcReader() = default;
  MailboxPair link_;
  std::unique_ptr<StageService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

class GrpcWriter final : public FrameWriter {
 public:
  GrpcWriter(std::string target, size_t frame_bytes, std::chrono::milliseconds reconnect_timeout)
      : target_(std::move(target)), buffer_(frame_bytes / sizeof(float) + 1),
        reconnect_timeout_(reconnect_timeout) {
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(-1);
    args.SetMaxReceiveMessageSize(-1);
    // Redial quickly after the next stage restarts (the default backoff grows to minutes).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    stub_ = pb::Stage::NewStub(channel_);
  }

  ~GrpcWriter() override { EndStream(); }

  float* Buffer() override { return buffer_.data(); }

  Status Publish(const FrameMeta& meta) override {
    return Send(meta, reinterpret_cast<const char*>(buffer_.data()));
  }

  Status PublishFrom(const FrameMeta& meta, const float* data) override {
    return Send(meta, reinterpret_cast<const char*>(data));
  }

  Status Close() override {
    if (!stream_) {
      Status s = Connect();
      if (!s) return s;
    }
    frame_.Clear();
    frame_.set_end_of_stream(true);
    stream_->Write(frame_);
    EndStream();
    return Ok{};
  }

  uint64_t Drops() const override { return drops_; }
  uint64_t Reconnects() const override { return reconnects_; }

 private:
  Status Send(const FrameMeta& meta, const char* bytes) {
    if (!stream_) {
      Status s = Connect();
      if (!s) {
        ++drops_;
        return s;
      }
    }
    frame_.set_seq(meta.seq);
    frame_.set_t_source_ns(meta.t_source_ns);
    frame_.set_height(uint32_t(meta.shape.h));
    frame_.set_width(uint32_t(meta.shape.w));
    frame_.set_channels(uint32_t(meta.shape.c));
    frame_.mutable_data()->assign(bytes, meta.shape.Bytes());
    frame_.clear_stamps();
    for (uint32_t i = 0; i < 2 * meta.stamp_count; ++i) frame_.add_stamps(meta.stamps[i]);
    if (!stream_->Write(frame_)) {
      grpc::Status st = stream_->Finish();
      stream_.reset();
      context_.reset();
      ++drops_;
      return Error{"next stage " + target_ + ": stream broke (" + st.error_message() +
                   ", code " + std::to_string(int(st.error_code())) + "); frame " +
                   std::to_string(meta.seq) + " lost, reconnecting"};
    }
    return Ok{};
  }

  Status Connect() {
    auto deadline = std::chrono::system_clock::now() + reconnect_timeout_;
    if (!channel_->WaitForConnected(deadline)) {
      return Error{"next stage " + target_ + ": not reachable within " +
                   std::to_string(reconnect_timeout_.count()) + " ms"};
    }
    context_ = std::make_unique<grpc::ClientContext>();
    stream_ = stub_->Push(context_.get(), &reply_);
    if (connected_before_) ++reconnects_;
    connected_before_ = true;
    return Ok{};
  }

  void EndStream() {
    if (!stream_) return;
    stream_->WritesDone();
    (void)stream_->Finish();
    stream_.reset();
    context_.reset();
  }

  std::string target_;
  runtime::Buffer buffer_;
  std::chrono::milliseconds reconnect_timeout_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Stage::Stub> stub_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientWriter<pb::Frame>> stream_;
  pb::PushReply reply_;
  pb::Frame frame_;
  uint64_t drops_ = 0;
  uint64_t reconnects_ = 0;
  bool connected_before_ = false;
};

}  // namespace

Result<std::unique_ptr<FrameReader>> ListenGrpc(const std::string& address, Shape expected,
                                                Policy policy) {
  return GrpcReader::Listen(address, expected, policy);
}

Result<std::unique_ptr<FrameWriter>> ConnectGrpc(const std::string& target, size_t frame_bytes,
                                                 std::chrono::milliseconds reconnect_timeout) {
  return std::unique_ptr<FrameWriter>(
      std::make_unique<GrpcWriter>(target, frame_bytes, reconnect_timeout));
}

}  // namespace edgefd::runtime
