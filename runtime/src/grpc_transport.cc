// gRPC links: the Stage service (receiving end) and a pushing client (sending end). The
// receiver parses into reused messages and the sender lends pooled frame buffers to gRPC, so
// the steady state allocates nothing of frame size (docs/pipeline.md, "gRPC transport tuning").
#include <fcntl.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <malloc.h>
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
#include <thread>
#include <utility>

#include "edgefd/runtime/transport.h"
#include "pipeline.grpc.pb.h"

namespace edgefd::runtime {
namespace {

namespace pb = ::edgefd::pipeline::v1;

/// gRPC reads each message into freshly malloc'd slices and frees them once parsed. With
/// glibc's defaults a frame-sized block is mmap'd, or carved from a thread arena that is
/// trimmed with madvise(MADV_DONTNEED) when freed; either way every frame's pages are
/// faulted in anew (~13.5 us per 4 KB page here: ~12 ms of kernel time per 3.7 MB frame,
/// spread over the receive path). Fixed thresholds keep frame-sized blocks in the heap
/// and freed pages mapped, so the receive buffers are reused warm. Process-wide, set once
/// by the first gRPC link; frames above 32 MB (glibc's cap) are still mmap'd.
void KeepFrameSizedAllocationsWarm() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  });
}

grpc::Status Invalid(uint64_t seq, const std::string& what) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "frame seq " + std::to_string(seq) + ": " + what);
}

/// Three reused Frame messages: the handler parses into `back`, the stage reads `front`,
/// `middle` holds the newest complete frame. No frame-sized copy beyond gRPC's own.
class FrameTriple {
 public:
  explicit FrameTriple(Policy policy) : policy_(policy) {}

  pb::Frame& Back() { return frames_[back_]; }

  /// Publishes Back(); under kBlock waits until the previous frame was taken.
  void Publish() {
    std::unique_lock<std::mutex> lock(mu_);
    if (policy_ == Policy::kBlock) cv_.wait(lock, [&] { return !fresh_ || shutdown_; });
    std::swap(back_, middle_);
    if (fresh_) ++drops_;
    fresh_ = true;
    cv_.notify_all();
  }

  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
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
    const pb::Frame& f = frames_[front_];
    meta->seq = f.seq();
    meta->t_source_ns = f.t_source_ns();
    meta->shape = {int(f.height()), int(f.width()), int(f.channels())};
    meta->stamp_count = uint32_t(f.stamps_size() / 2);
    for (int i = 0; i < f.stamps_size(); ++i) meta->stamps[i] = f.stamps(i);
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
  pb::Frame frames_[3];
  int back_ = 0, middle_ = 1, front_ = 2;
  bool fresh_ = false, closed_ = false, shutdown_ = false;
  uint64_t drops_ = 0;
};

/// Validates pushed frames and hands them to the stage's input.
class StageService final : public pb::Stage::Service {
 public:
  StageService(Shape expected, FrameTriple* input) : expected_(expected), input_(input) {}

  grpc::Status Push(grpc::ServerContext*, grpc::ServerReader<pb::Frame>* reader,
                    pb::PushReply* reply) override {
    // One upstream feeds a stage; a reconnecting upstream waits for its stale stream to end.
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t frames = 0;
    for (;;) {
      pb::Frame& frame = input_->Back();  // reused: its data keeps its capacity
      if (!reader->Read(&frame)) break;
      if (frame.end_of_stream()) {
        input_->Close();
        break;
      }
      grpc::Status bad = Validate(frame, frames > 0);
      if (!bad.ok()) return bad;
      last_seq_ = frame.seq();
      input_->Publish();
      ++frames;
    }
    reply->set_frames(frames);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Validate(const pb::Frame& f, bool has_previous) const {
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
    if (f.stamps_size() % 2 != 0 || f.stamps_size() > 2 * (kMaxStages - 1)) {
      return Invalid(f.seq(), std::to_string(f.stamps_size()) +
                                  " stamps, expected an even number up to " +
                                  std::to_string(2 * (kMaxStages - 1)));
    }
    if (has_previous && f.seq() <= last_seq_) {
      return Invalid(f.seq(), "sequence went backwards (after " + std::to_string(last_seq_) + ")");
    }
    return grpc::Status::OK;
  }

  Shape expected_;
  FrameTriple* input_;
  std::mutex mu_;
  uint64_t last_seq_ = 0;
};

class GrpcReader final : public FrameReader {
 public:
  static Result<std::unique_ptr<FrameReader>> Listen(const std::string& address, Shape expected,
                                                     Policy policy) {
    KeepFrameSizedAllocationsWarm();
    auto r = std::unique_ptr<GrpcReader>(new GrpcReader(policy));
    r->service_ = std::make_unique<StageService>(expected, &r->input_);
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
  mutable FrameTriple input_;
  std::unique_ptr<StageService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
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

class GrpcWriter final : public FrameWriter {
 public:
  GrpcWriter(std::string target, size_t frame_bytes, std::chrono::milliseconds reconnect_timeout)
      : target_(std::move(target)),
        frame_bytes_(frame_bytes),
        reconnect_timeout_(reconnect_timeout),
        pool_(std::make_shared<SendPool>(frame_bytes_)) {
    KeepFrameSizedAllocationsWarm();
    args_.SetMaxSendMessageSize(-1);
    args_.SetMaxReceiveMessageSize(-1);
    if (target_.rfind("unix:", 0) == 0) {
      unix_path_ = target_.substr(5);
      return;  // dialled by Connect(), one channel per connection
    }
    // Redial quickly after the next stage restarts (the default backoff grows to minutes).
    args_.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
    args_.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
    args_.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args_);
    PushMethodFor(channel_);
  }

  ~GrpcWriter() override { EndStream(); }

  // The stage computes straight into a pooled buffer that is sent without a copy.
  float* Buffer() override { return pool_->Current(); }

  Status Publish(const FrameMeta& meta) override { return Send(meta); }

  Status Close() override {
    if (!stream_) {
      Status s = Connect();
      if (!s) return s;
    }
    pb::Frame end;
    end.set_end_of_stream(true);
    grpc::Slice bytes(end.SerializeAsString());
    stream_->Write(grpc::ByteBuffer(&bytes, 1));
    EndStream();
    return Ok{};
  }

  uint64_t Drops() const override { return drops_; }
  uint64_t Reconnects() const override { return reconnects_; }

 private:
  Status Send(const FrameMeta& meta) {
    if (!stream_) {
      Status s = Connect();
      if (!s) {
        ++drops_;
        return s;
      }
    }
    // The message is the Frame's small fields serialised by protobuf, then field 6 (data)
    // as its tag and length followed by the pooled buffer itself; the receiver parses an
    // ordinary Frame (protobuf accepts fields in any order).
    size_t n = meta.shape.Bytes();
    if (n > frame_bytes_) {
      ++drops_;
      return Error{"frame " + std::to_string(meta.seq) + ": shape " + meta.shape.ToString() +
                   " is " + std::to_string(n) + " bytes, the link to " + target_ +
                   " carries at most " + std::to_string(frame_bytes_)};
    }
    head_.set_seq(meta.seq);
    head_.set_t_source_ns(meta.t_source_ns);
    head_.set_height(uint32_t(meta.shape.h));
    head_.set_width(uint32_t(meta.shape.w));
    head_.set_channels(uint32_t(meta.shape.c));
    head_.clear_stamps();
    for (uint32_t i = 0; i < 2 * meta.stamp_count; ++i) head_.add_stamps(meta.stamps[i]);
    head_.SerializeToString(&head_bytes_);
    head_bytes_.push_back(char((pb::Frame::kDataFieldNumber << 3) | 2));  // length-delimited
    for (uint64_t v = n;; v >>= 7) {                                      // varint
      if (v < 0x80) {
        head_bytes_.push_back(char(v));
        break;
      }
      head_bytes_.push_back(char(0x80 | (v & 0x7f)));
    }
    grpc::Slice slices[2] = {grpc::Slice(head_bytes_), pool_->Lend(n)};
    if (!stream_->Write(grpc::ByteBuffer(slices, 2))) {
      grpc::Status st = stream_->Finish();
      stream_.reset();
      context_.reset();
      ++drops_;
      return Error{"next stage " + target_ + ": stream broke (" + st.error_message() + ", code " +
                   std::to_string(int(st.error_code())) + "); frame " + std::to_string(meta.seq) +
                   " lost, reconnecting"};
    }
    return Ok{};
  }

  Status Connect() {
    auto deadline = std::chrono::system_clock::now() + reconnect_timeout_;
    if (!unix_path_.empty() ? !DialUnix(deadline) : !channel_->WaitForConnected(deadline)) {
      return Error{"next stage " + target_ + ": not reachable within " +
                   std::to_string(reconnect_timeout_.count()) + " ms"};
    }
    context_ = std::make_unique<grpc::ClientContext>();
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
  bool DialUnix(std::chrono::system_clock::time_point deadline) {
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
      if (retry >= deadline) return false;
      std::this_thread::sleep_until(retry);
    }
  }

  void PushMethodFor(const std::shared_ptr<grpc::Channel>& channel) {
    push_method_.emplace("/edgefd.pipeline.v1.Stage/Push",
                         grpc::internal::RpcMethod::CLIENT_STREAMING, channel);
  }

  void EndStream() {
    if (!stream_) return;
    stream_->WritesDone();
    (void)stream_->Finish();
    stream_.reset();
    context_.reset();
  }

  std::string target_;
  size_t frame_bytes_;
  std::chrono::milliseconds reconnect_timeout_;
  grpc::ChannelArguments args_;
  std::string unix_path_;  // set for unix: targets, which DialUnix connects
  std::shared_ptr<grpc::Channel> channel_;
  std::optional<grpc::internal::RpcMethod> push_method_;  // Push, bound to channel_
  std::unique_ptr<grpc::ClientContext> context_;
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> stream_;
  pb::PushReply reply_;
  std::shared_ptr<SendPool> pool_;
  pb::Frame head_;          // reused: the frame's fields other than data
  std::string head_bytes_;  // reused: head_ serialised, then data's tag and length
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
