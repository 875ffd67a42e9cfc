// The receiving end of a gRPC link: the Stage service a stage or sink serves. It parses into
// reused messages, so the steady state allocates nothing of frame size (docs/pipeline.md,
// "gRPC transport tuning"), and it decides who may push (docs/pipeline.md, "Who may push").
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "edgefd/runtime/transport.h"
#include "grpc_link.h"
#include "link_security.h"

namespace edgefd::runtime {
namespace {

grpc::Status Invalid(uint64_t seq, const std::string& what) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "frame seq " + std::to_string(seq) + ": " + what);
}

// The times of a checked Frame (at most kMaxStages stages: Validate) into `meta`.
void FrameTimes(const pb::Frame& f, FrameMeta* meta) {
  meta->t_source_ns = f.t_source_ns();
  meta->source_clock = f.source_clock();
  meta->source_send_ns = f.source_send_ns();
  meta->stage_count = uint32_t(std::min(f.stage_times_size() / 3, kMaxStages));
  for (uint32_t i = 0; i < meta->stage_count; ++i) {
    meta->stages[i] = {f.stage_times(int(3 * i)), f.stage_times(int(3 * i + 1)),
                       f.stage_times(int(3 * i + 2))};
  }
}

// A Frame's fields besides its pixels take a few hundred bytes (48 times at most); a message
// larger than the frame plus this is refused before it is buffered.
constexpr size_t kMessageMargin = 4096;
// An upstream silent this long may be replaced by a new stream (a reconnecting upstream whose
// old stream is half-dead, or the real upstream after a stream that never sends).
constexpr auto kTakeover = std::chrono::seconds(1);

/// The stage's input: two reused Frame messages (the newest complete frame and the one the
/// stage reads; the upstream's handler parses into a third of its own and swaps it in, so no
/// frame-sized copy beyond gRPC's own), and which Push stream is the upstream.
class StageInput {
 public:
  explicit StageInput(Policy policy) : policy_(policy) {}

  /// A new Push stream becomes the upstream when there is none, or when the current one has
  /// been silent for kTakeover (it is cancelled); nullopt while the current one delivers.
  std::optional<uint64_t> Admit(grpc::ServerContext* context) {
    std::lock_guard<std::mutex> lock(mu_);
    if (upstream_context_ != nullptr) {
      if (waiting_ || Clock::now() - last_frame_ < kTakeover) return std::nullopt;
      spdlog::warn("stage input: a new upstream stream replaces one silent for {} ms",
                   std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_frame_)
                       .count());
      upstream_context_->TryCancel();
    }
    upstream_context_ = context;
    upstream_ = ++streams_;
    last_frame_ = Clock::now();
    cv_.notify_all();  // a replaced upstream waiting in Publish leaves
    return upstream_;
  }

  /// Stream `id` ended.
  void Leave(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (upstream_ == id) {
      upstream_ = 0;
      upstream_context_ = nullptr;
    }
    cv_.notify_all();
  }

  /// Hands `frame` to the stage (it gets a reused buffer back); under kBlock waits until the
  /// previous frame was taken. False when stream `id` is no longer the upstream.
  bool Publish(uint64_t id, pb::Frame& frame) {
    std::unique_lock<std::mutex> lock(mu_);
    if (policy_ == Policy::kBlock) {
      waiting_ = true;  // held up by us: not silent
      cv_.wait(lock, [&] { return !fresh_ || shutdown_ || upstream_ != id; });
      waiting_ = false;
    }
    if (upstream_ != id || shutdown_) return false;
    frames_[middle_].Swap(&frame);
    if (fresh_) ++drops_;
    fresh_ = true;
    last_frame_ = Clock::now();
    cv_.notify_all();
    return true;
  }

  /// End of stream from the upstream `id`.
  void Close(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    if (upstream_ != id) return;
    closed_ = true;
    cv_.notify_all();
  }

  /// Wakes a handler blocked in Publish (server shutting down).
  void Shutdown() {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
  }

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, timeout, [&] { return fresh_ || closed_; }))
      return ReadResult::kTimeout;
    if (!fresh_) return ReadResult::kClosed;
    std::swap(front_, middle_);
    fresh_ = false;
    cv_.notify_all();
    const pb::Frame& f = frames_[front_];  // validated by the handler
    FrameTimes(f, meta);
    meta->seq = f.seq();
    meta->shape = {int(f.height()), int(f.width()), int(f.channels())};
    *data = reinterpret_cast<const float*>(f.data().data());
    return ReadResult::kFrame;
  }

  uint64_t Drops() {
    std::lock_guard<std::mutex> lock(mu_);
    return drops_;
  }

 private:
  Policy policy_;
  std::mutex mu_;
  std::condition_variable cv_;
  pb::Frame frames_[2];
  int middle_ = 0, front_ = 1;
  bool fresh_ = false, closed_ = false, shutdown_ = false;
  uint64_t drops_ = 0;
  uint64_t upstream_ = 0;  // the stream id allowed to publish; 0: none
  uint64_t streams_ = 0;
  grpc::ServerContext* upstream_context_ = nullptr;
  Clock::time_point last_frame_{};
  bool waiting_ = false;  // the upstream waits in Publish for the stage
};

/// Validates pushed frames and hands them to the stage's input.
class StageService final : public pb::Stage::Service {
 public:
  /// `token`: what every stream must present; "" admits any.
  StageService(Shape expected, StageInput* input, std::string token)
      : expected_(expected), input_(input), token_(std::move(token)) {}

  grpc::Status Push(grpc::ServerContext* context, grpc::ServerReader<pb::Frame>* reader,
                    pb::PushReply* reply) override {
    // Before Admit: a stream without the token never becomes the upstream, however long the
    // real one has been silent, and its end-of-stream never reaches the stage.
    if (!PresentsToken(*context, token_)) return Unauthenticated(*context);
    const std::optional<uint64_t> id = input_->Admit(context);
    if (!id) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "this stage has a live upstream; another stream is refused until it "
                          "has been silent for 1 s");
    }
    struct Leave {
      StageInput* input;
      uint64_t id;
      ~Leave() { input->Leave(id); }
    } leave{input_, *id};
    pb::Frame frame;  // this stream's buffer, swapped with the stage's
    uint64_t frames = 0, last_seq = 0;
    while (reader->Read(&frame)) {
      if (frame.end_of_stream()) {
        input_->Close(*id);
        break;
      }
      grpc::Status bad = Validate(frame, frames > 0, last_seq);
      if (!bad.ok()) return bad;
      last_seq = frame.seq();
      if (!input_->Publish(*id, frame)) {
        return grpc::Status(grpc::StatusCode::ABORTED, "another stream took over this stage");
      }
      ++frames;
    }
    reply->set_frames(frames);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Unauthenticated(const grpc::ServerContext& context) {
    // Logged at 1, 2, 4, 8, ... refusals: a flood of them cannot flood the log.
    const uint64_t n = ++refused_;
    if ((n & (n - 1)) == 0) {
      spdlog::warn("stage input: refused a Push from {} without this pipeline's token ({} so far)",
                   context.peer(), n);
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this stage takes frames only from streams that present its pipeline's "
                        "token (--token-file)");
  }

  grpc::Status Validate(const pb::Frame& f, bool has_previous, uint64_t last_seq) const {
    Shape s{int(f.height()), int(f.width()), int(f.channels())};
    if (!(s == expected_)) {
      return Invalid(f.seq(),
                     "shape " + s.ToString() + ", this stage takes " + expected_.ToString());
    }
    if (f.data().size() != expected_.Bytes()) {
      return Invalid(f.seq(), "data is " + std::to_string(f.data().size()) + " bytes, expected " +
                                  std::to_string(expected_.Bytes()) + " float32 for " +
                                  s.ToString());
    }
    // A stage sends the times of the stages before it and its own; the last stage sends to
    // the sink, so at most kMaxStages - 1 come with a frame that has a stage still to pass.
    if (f.stage_times_size() % 3 != 0 || f.stage_times_size() > 3 * kMaxStages) {
      return Invalid(f.seq(), std::to_string(f.stage_times_size()) +
                                  " stage times, expected three per stage, at most " +
                                  std::to_string(3 * kMaxStages));
    }
    FrameMeta times;  // the times, checked as every link checks them
    times.shape = s;
    FrameTimes(f, &times);
    if (std::string why = CheckFrameMeta(times, expected_.Bytes()); !why.empty()) {
      return Invalid(f.seq(), why);
    }
    if (has_previous && f.seq() <= last_seq) {
      return Invalid(f.seq(), "sequence went backwards (after " + std::to_string(last_seq) + ")");
    }
    return grpc::Status::OK;
  }

  Shape expected_;
  StageInput* input_;
  const std::string token_;
  std::atomic<uint64_t> refused_{0};
};

class GrpcReader final : public FrameReader {
 public:
  static Result<std::unique_ptr<FrameReader>> Listen(const std::string& address, Shape expected,
                                                     Policy policy, const LinkSecurity& tls,
                                                     const GrpcKeepalive& keepalive) {
    KeepFrameSizedAllocationsWarm();
    auto credentials = StageServerCredentials(tls);
    if (!credentials) return Error{"--listen " + address + ": " + credentials.error().message};
    auto token = LinkToken(tls);
    if (!token) return Error{"--listen " + address + ": " + token.error().message};
    if (!tls.Tls() && !tls.Token() && !LocalOnly(address)) {
      spdlog::warn(
          "--listen {}: UNAUTHENTICATED: neither --token-file nor --tls-cert/--tls-key/--tls-ca "
          "is set, so any client that reaches this port can push frames here and, once the "
          "upstream is silent for 1 s, take this stage over and end its stream; give every end "
          "of the pipeline the same --token-file (docs/pipeline.md, \"Who may push\")",
          address);
    }
    auto r = std::unique_ptr<GrpcReader>(new GrpcReader(policy));
    r->service_ = std::make_unique<StageService>(expected, &r->input_, std::move(*token));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, *credentials, &port);
    builder.SetMaxReceiveMessageSize(
        int(std::min<size_t>(expected.Bytes() + kMessageMargin, size_t(INT_MAX))));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, int(keepalive.time.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, int(keepalive.timeout.count()));
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    // The upstream's own keepalive pings, as frequent as ours, are welcome.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                               int(keepalive.time.count() / 2));
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 4);
    // gRPC 1.51 buffers a message whole before it checks the size limit above, so the limit
    // alone would let a 500 MB push into memory. The quota bounds what the stage's transport
    // may hold (a few frames and the buffers around them): a stream that goes past it is reset
    // (RESOURCE_EXHAUSTED, "Buffers full") and its memory freed. Each call also holds a thread
    // of the synchronous server: a flood of streams is refused rather than growing the stage.
    // A well-behaved upstream never meets that reset: HTTP/2 flow control lets it have only
    // about one frame on the wire unread (BDP probing would grow the window past the quota, and
    // a fast source then lost frames to resets under the block policy).
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(
        GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
        int(std::min<size_t>(expected.Bytes() + kMessageMargin, size_t(INT_MAX))));
    grpc::ResourceQuota quota("edgefd-stage");
    quota.Resize(4 * expected.Bytes() + (8 << 20));
    quota.SetMaxThreads(16);
    builder.SetResourceQuota(quota);
    builder.RegisterService(r->service_.get());
    r->server_ = builder.BuildAndStart();
    if (!r->server_) {
      return Error{"--listen " + address + ": cannot serve gRPC there" +
                   (tls.Tls() ? " (do --tls-cert and --tls-key make a pair?)" : "")};
    }
    r->address_ = address;
    if (address.rfind("unix:", 0) != 0) {
      size_t colon = address.rfind(':');
      if (port <= 0) return Error{"--listen " + address + ": cannot bind"};
      r->address_ = address.substr(0, colon + 1) + std::to_string(port);
    }
    return std::unique_ptr<FrameReader>(std::move(r));
  }

  ~GrpcReader() override {
    input_.Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) override {
    return input_.Next(meta, data, timeout);
  }
  uint64_t Drops() const override { return input_.Drops(); }
  std::string Address() const override { return address_; }

 private:
  explicit GrpcReader(Policy policy) : input_(policy) {}
  mutable StageInput input_;
  std::unique_ptr<StageService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

}  // namespace

Result<std::unique_ptr<FrameReader>> ListenGrpc(const std::string& address, Shape expected,
                                                Policy policy, const LinkSecurity& tls,
                                                const GrpcKeepalive& keepalive) {
  return GrpcReader::Listen(address, expected, policy, tls, keepalive);
}

}  // namespace edgefd::runtime
