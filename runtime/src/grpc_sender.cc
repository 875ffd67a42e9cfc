// The sending end of a gRPC link: a client pushing frames to the next stage's Stage service.
// It lends pooled frame buffers to gRPC, so the steady state allocates nothing of frame size
// (docs/pipeline.md, "gRPC transport tuning"); a deadline watchdog and Abort() keep a send from
// hanging on a next stage that stopped reading.
#include <fcntl.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "edgefd/runtime/transport.h"
#include "grpc_link.h"
#include "link_security.h"

namespace edgefd::runtime {
namespace {

/// Cancels a call that outlives its deadline, so no send or finish waits for ever on a next
/// stage that stopped reading. Arm/Disarm per frame cost two uncontended locks: the thread
/// sleeps until the earliest deadline it knows and is woken only for an earlier one.
class CallWatchdog {
 public:
  CallWatchdog() : thread_([this] { Run(); }) {}
  ~CallWatchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  CallWatchdog(const CallWatchdog&) = delete;
  CallWatchdog& operator=(const CallWatchdog&) = delete;

  void Arm(grpc::ClientContext* context, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = context;
    deadline_ = deadline;
    fired_ = false;
    if (deadline < sleeping_until_) cv_.notify_all();
  }
  /// Disarms; true when the deadline passed and the call was cancelled.
  bool Disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    return fired_;
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (context_ != nullptr && Clock::now() >= deadline_) {
        context_->TryCancel();
        context_ = nullptr;
        fired_ = true;
      }
      sleeping_until_ = context_ != nullptr ? deadline_ : Clock::time_point::max();
      if (context_ != nullptr) {
        cv_.wait_until(lock, deadline_);
      } else {
        cv_.wait(lock);
      }
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  Clock::time_point deadline_{};
  Clock::time_point sleeping_until_ = Clock::time_point::max();
  bool fired_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is initialised
};

/// Frame buffers the sender lends to gRPC without copying: a buffer stays busy until gRPC
/// drops its last reference to the slice that wraps it (after the bytes reached the socket),
/// and the stage computes into a free one meanwhile. Shared with the slices' release
/// callbacks, so it outlives the writer while gRPC still holds a buffer.
class SendPool : public std::enable_shared_from_this<SendPool> {
 public:
  explicit SendPool(size_t bytes) : bytes_(bytes) {}

  /// A buffer gRPC does not hold, pre-faulted; the same one until it is sent.
  float* Current() {
    std::lock_guard<std::mutex> lock(mu_);
    if (current_ < bufs_.size() && !bufs_[current_].busy) return bufs_[current_].data.get();
    for (current_ = 0; current_ < bufs_.size() && bufs_[current_].busy; ++current_) {
    }
    if (current_ == bufs_.size()) {
      // value-initialised: every page touched now rather than on the hot path
      bufs_.push_back(
          Buf{std::unique_ptr<float[]>(new float[bytes_ / sizeof(float) + 1]()), false});
    }
    return bufs_[current_].data.get();
  }

  /// Wraps the first `bytes` of Current() in a slice and marks it busy until released.
  grpc::Slice Lend(size_t bytes) {
    float* data = Current();
    std::lock_guard<std::mutex> lock(mu_);
    bufs_[current_].busy = true;
    auto* loan = new Loan{shared_from_this(), current_};
    return grpc::Slice(data, bytes, &SendPool::Release, loan);
  }

 private:
  struct Buf {
    std::unique_ptr<float[]> data;
    bool busy;
  };
  struct Loan {
    std::shared_ptr<SendPool> pool;
    size_t index;
  };

  static void Release(void* p) {
    std::unique_ptr<Loan> loan(static_cast<Loan*>(p));
    std::lock_guard<std::mutex> lock(loan->pool->mu_);
    loan->pool->bufs_[loan->index].busy = false;
  }

  size_t bytes_;
  std::mutex mu_;
  std::deque<Buf> bufs_;  // deque: growing never moves a Buf another thread is releasing
  size_t current_ = 0;
};

/// The bytes of a frame's message before its data: the Frame's small fields serialised by
/// protobuf, then field 6 (data) as its tag and the length `data_bytes`; the data itself
/// follows (the pooled buffer, uncopied), and the receiver parses an ordinary Frame (protobuf
/// accepts fields in any order). `head` is scratch, reused between frames.
void SerializeFrameHead(const FrameMeta& meta, size_t data_bytes, pb::Frame& head,
                        std::string* out) {
  head.set_seq(meta.seq);
  head.set_t_source_ns(meta.t_source_ns);
  head.set_height(uint32_t(meta.shape.h));
  head.set_width(uint32_t(meta.shape.w));
  head.set_channels(uint32_t(meta.shape.c));
  head.set_source_clock(meta.source_clock);
  head.set_source_send_ns(meta.source_send_ns);
  head.clear_stage_times();
  for (uint32_t i = 0; i < meta.stage_count && i < uint32_t(kMaxStages); ++i) {
    const StageTimes& t = meta.stages[i];
    for (int64_t v : {t.wait_ns, t.compute_ns, t.send_ns}) head.add_stage_times(v);
  }
  head.SerializeToString(out);
  out->push_back(char((pb::Frame::kDataFieldNumber << 3) | 2));  // length-delimited
  for (uint64_t v = data_bytes;; v >>= 7) {                      // varint
    if (v < 0x80) {
      out->push_back(char(v));
      break;
    }
    out->push_back(char(0x80 | (v & 0x7f)));
  }
}

class GrpcWriter final : public FrameWriter {
 public:
  /// `credentials`: null for plaintext; `token`: presented on every stream ("": none).
  GrpcWriter(std::string target, size_t frame_bytes, std::chrono::milliseconds reconnect_timeout,
             std::shared_ptr<grpc::ChannelCredentials> credentials, std::string token,
             const GrpcKeepalive& keepalive)
      : target_(std::move(target)),
        frame_bytes_(frame_bytes),
        reconnect_timeout_(reconnect_timeout),
        token_(std::move(token)),
        pool_(std::make_shared<SendPool>(frame_bytes_)) {
    KeepFrameSizedAllocationsWarm();
    args_.SetMaxSendMessageSize(-1);
    args_.SetMaxReceiveMessageSize(64 << 10);  // a PushReply
    args_.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, int(keepalive.time.count()));
    args_.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, int(keepalive.timeout.count()));
    args_.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args_.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    if (target_.rfind("unix:", 0) == 0 && credentials == nullptr) {
      unix_path_ = target_.substr(5);
      return;  // dialled by Connect(), one channel per connection
    }
    // Redial quickly after the next stage restarts (the default backoff grows to minutes).
    args_.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args_.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args_.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(
        target_, credentials ? credentials : grpc::InsecureChannelCredentials(), args_);
    PushMethodFor(channel_);
  }

  ~GrpcWriter() override { EndStream(); }

  // The stage computes straight into a pooled buffer that is sent without a copy.
  float* Buffer() override { return pool_->Current(); }

  Status Publish(const FrameMeta& meta) override { return Send(meta); }

  Status Close() override {
    // After Abort() the end-of-stream still goes out (a stopping stage ends its stream
    // downstream), on a connection that may take kFinishTimeout at most.
    if (!stream_) {
      Status s = Aborted() ? Connect(kFinishTimeout, false) : Connect(reconnect_timeout_, true);
      if (!s) return s;
    }
    pb::Frame end;
    end.set_end_of_stream(true);
    grpc::Slice bytes(end.SerializeAsString());
    watchdog_.Arm(context_.get(), Clock::now() + kFinishTimeout);
    stream_->Write(grpc::ByteBuffer(&bytes, 1));
    watchdog_.Disarm();
    EndStream();
    return Ok{};
  }

  uint64_t Drops() const override { return drops_; }
  uint64_t Reconnects() const override { return reconnects_; }

 private:
  // Cuts short a frame's Write waiting on the next stage, and a Connect (which polls
  // Aborted()); Send fails from then on.
  void OnAbort() override {
    std::lock_guard<std::mutex> lock(context_mu_);
    if (context_ && sending_) context_->TryCancel();
  }

  // Marks a frame's Write in progress, unless Abort() came first.
  bool BeginSend() {
    std::lock_guard<std::mutex> lock(context_mu_);
    if (Aborted()) return false;
    sending_ = true;
    return true;
  }
  void EndSend() {
    std::lock_guard<std::mutex> lock(context_mu_);
    sending_ = false;
  }

  Error AbortedError() const {
    return Error{"next stage " + target_ + ": link aborted (the program is stopping)"};
  }

  Status Send(const FrameMeta& meta) {
    if (Aborted()) {
      ++drops_;
      return AbortedError();
    }
    if (!stream_) {
      Status s = Connect(reconnect_timeout_, true);
      if (!s) {
        ++drops_;
        return s;
      }
    }
    // The message is SerializeFrameHead's bytes followed by the pooled buffer itself.
    size_t n = meta.shape.Bytes();
    if (n > frame_bytes_) {
      ++drops_;
      return Error{"frame " + std::to_string(meta.seq) + ": shape " + meta.shape.ToString() +
                   " is " + std::to_string(n) + " bytes, the link to " + target_ +
                   " carries at most " + std::to_string(frame_bytes_)};
    }
    SerializeFrameHead(meta, n, head_, &head_bytes_);
    grpc::Slice slices[2] = {grpc::Slice(head_bytes_), pool_->Lend(n)};
    if (!BeginSend()) {
      ++drops_;
      return AbortedError();
    }
    watchdog_.Arm(context_.get(), Clock::now() + reconnect_timeout_);
    const bool written = stream_->Write(grpc::ByteBuffer(slices, 2));
    const bool timed_out = watchdog_.Disarm();
    EndSend();
    if (!written) {
      watchdog_.Arm(context_.get(), Clock::now() + kFinishTimeout);
      grpc::Status st = stream_->Finish();
      watchdog_.Disarm();
      stream_.reset();
      ResetContext();
      ++drops_;
      if (Aborted()) return AbortedError();
      if (timed_out) {
        return Error{"next stage " + target_ + ": took no frame for " +
                     std::to_string(reconnect_timeout_.count()) + " ms; stream cancelled, frame " +
                     std::to_string(meta.seq) + " lost, reconnecting"};
      }
      return Error{"next stage " + target_ + ": stream broke (" + st.error_message() + ", code " +
                   std::to_string(int(st.error_code())) + "); frame " + std::to_string(meta.seq) +
                   " lost, reconnecting"};
    }
    return Ok{};
  }

  // Dials within `timeout`; `abortable`: Abort() ends the wait.
  Status Connect(std::chrono::milliseconds timeout, bool abortable) {
    auto deadline = std::chrono::system_clock::now() + timeout;
    if (!unix_path_.empty() ? !DialUnix(deadline, abortable)
                            : !WaitForChannel(deadline, abortable)) {
      if (abortable && Aborted()) return AbortedError();
      return Error{"next stage " + target_ + ": not reachable within " +
                   std::to_string(timeout.count()) + " ms"};
    }
    auto context = std::make_unique<grpc::ClientContext>();
    if (!token_.empty()) context->AddMetadata(kTokenHeader, kTokenPrefix + token_);
    {
      std::lock_guard<std::mutex> lock(context_mu_);
      context_ = std::move(context);
    }
    // Client-streaming Push with raw messages: what the generated stub does, typed on
    // ByteBuffer so frames go out without a serialising copy.
    stream_.reset(grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(
        channel_.get(), *push_method_, context_.get(), &reply_));
    if (connected_before_) ++reconnects_;
    connected_before_ = true;
    return Ok{};
  }

  /// Connects to unix_path_ itself, retrying every 50 ms until `deadline`, and wraps the
  /// socket in a fresh channel. gRPC leaves a unix socket's send buffer at the kernel
  /// default (~208 KB), so each frame crosses in ~18 partial writes, each a wake-up of
  /// both ends on two shared cores; a buffer that holds a whole frame lets the sender
  /// write it in one go. (TCP autotunes its buffers, so TCP targets keep gRPC's own dialler.)
  bool DialUnix(std::chrono::system_clock::time_point deadline, bool abortable) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (unix_path_.size() >= sizeof(addr.sun_path)) return false;
    std::memcpy(addr.sun_path, unix_path_.c_str(), unix_path_.size() + 1);
    for (;;) {
      int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return false;
      // The kernel doubles the value for its bookkeeping and caps it at net.core.wmem_max.
      int sndbuf = int(std::min<size_t>(frame_bytes_ + (256 << 10), 64 << 20));
      (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
        (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        channel_ = grpc::CreateCustomInsecureChannelFromFd(target_, fd, args_);  // owns fd
        PushMethodFor(channel_);
        return true;
      }
      close(fd);
      auto retry = std::chrono::system_clock::now() + std::chrono::milliseconds(50);
      if (retry >= deadline || (abortable && Aborted())) return false;
      std::this_thread::sleep_until(retry);
    }
  }

  // The channel's WaitForConnected in 50 ms slices, so an Abort() can end the wait.
  bool WaitForChannel(std::chrono::system_clock::time_point deadline, bool abortable) {
    for (;;) {
      auto slice =
          std::min(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(50));
      if (channel_->WaitForConnected(slice)) return true;
      if ((abortable && Aborted()) || slice >= deadline) return false;
    }
  }

  void PushMethodFor(const std::shared_ptr<grpc::Channel>& channel) {
    push_method_.emplace("/edgefd.pipeline.v1.Stage/Push",
                         grpc::internal::RpcMethod::CLIENT_STREAMING, channel);
  }

  // Ends the stream; a next stage that does not answer within kFinishTimeout is cut off.
  void EndStream() {
    if (!stream_) return;
    watchdog_.Arm(context_.get(), Clock::now() + kFinishTimeout);
    stream_->WritesDone();
    (void)stream_->Finish();
    watchdog_.Disarm();
    stream_.reset();
    ResetContext();
  }

  void ResetContext() {
    std::lock_guard<std::mutex> lock(context_mu_);
    context_.reset();
  }

  static constexpr std::chrono::seconds kFinishTimeout{1};

  std::string target_;
  size_t frame_bytes_;
  std::chrono::milliseconds reconnect_timeout_;
  const std::string token_;
  grpc::ChannelArguments args_;
  std::string unix_path_;  // set for unix: targets, which DialUnix connects
  std::shared_ptr<grpc::Channel> channel_;
  std::optional<grpc::internal::RpcMethod> push_method_;  // Push, bound to channel_
  std::mutex context_mu_;  // context_ and sending_ change on the sending thread, Abort() reads
  std::unique_ptr<grpc::ClientContext> context_;  // them on another
  bool sending_ = false;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> stream_;
  pb::PushReply reply_;
  std::shared_ptr<SendPool> pool_;
  pb::Frame head_;          // reused: the frame's fields other than data
  std::string head_bytes_;  // reused: head_ serialised, then data's tag and length
  uint64_t drops_ = 0;
  uint64_t reconnects_ = 0;
  bool connected_before_ = false;
  CallWatchdog watchdog_;  // last: destroyed first, while the context it may cancel lives
};

}  // namespace

size_t GrpcFrameMessageBytes(Shape shape, int upstream_stages) {
  // Typical magnitudes, each varint at the length it has in a running pipeline: frame 2^24
  // (a month at 6 fps), the source's monotonic clock 10^15 ns (11.6 days of uptime), every
  // duration 10^8 ns (100 ms). A frame's head differs from this by a few bytes at most.
  FrameMeta meta;
  meta.seq = uint64_t(1) << 24;
  meta.t_source_ns = 1'000'000'000'000'000;
  meta.source_clock = ~uint64_t(0);  // fixed64: 8 bytes whatever its value
  meta.source_send_ns = 100'000'000;
  meta.shape = shape;
  meta.stage_count = uint32_t(std::clamp(upstream_stages, 0, kMaxStages));
  for (uint32_t i = 0; i < meta.stage_count; ++i) {
    meta.stages[i] = StageTimes{100'000'000, 100'000'000, 100'000'000};
  }
  pb::Frame head;
  std::string bytes;
  SerializeFrameHead(meta, shape.Bytes(), head, &bytes);
  return bytes.size() + shape.Bytes();
}

Result<std::unique_ptr<FrameWriter>> ConnectGrpc(const std::string& target, size_t frame_bytes,
                                                 std::chrono::milliseconds reconnect_timeout,
                                                 const LinkSecurity& tls,
                                                 const GrpcKeepalive& keepalive) {
  auto credentials = StageChannelCredentials(tls);
  if (!credentials) return Error{"--next " + target + ": " + credentials.error().message};
  auto token = LinkToken(tls);
  if (!token) return Error{"--next " + target + ": " + token.error().message};
  return std::unique_ptr<FrameWriter>(std::make_unique<GrpcWriter>(
      target, frame_bytes, reconnect_timeout, *credentials, std::move(*token), keepalive));
}

}  // namespace edgefd::runtime
