// gRPC links: the Stage service (receiving end) and a pushing client (sending end). The
// receiver parses into reused messages and the sender lends pooled frame buffers to gRPC, so
// the steady state allocates nothing of frame size (docs/pipeline.md, "gRPC transport tuning").
#include <fcntl.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <tuple>
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

using Clock = std::chrono::steady_clock;

// A Frame's fields besides its pixels take a few hundred bytes (30 stamps at most); a message
// larger than the frame plus this is refused before it is buffered.
constexpr size_t kMessageMargin = 4096;
// An upstream silent this long may be replaced by a new stream (a reconnecting upstream whose
// old stream is half-dead, or the real upstream after a stream that never sends).
constexpr auto kTakeover = std::chrono::seconds(1);

// --- mutual TLS ----------------------------------------------------------------------------

struct Pems {
  std::string cert, key, ca;
};

Result<std::string> ReadPem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{flag + " " + path + ": cannot read: " + std::strerror(errno)};
  constexpr size_t kMaxPem = 1 << 20;
  std::string text(kMaxPem + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  if (text.size() > kMaxPem)
    return Error{flag + " " + path + ": larger than 1 MiB, not a PEM file"};
  if (text.find("-----BEGIN ") == std::string::npos) {
    return Error{flag + " " + path + ": not PEM (no '-----BEGIN ' line)"};
  }
  return text;
}

Result<Pems> ReadTls(const TlsFiles& tls) {
  if (tls.cert.empty() || tls.key.empty() || tls.ca.empty()) {
    return Error{
        "--tls-cert, --tls-key and --tls-ca go together: mutual TLS needs this end's "
        "certificate and key and the CA of the other end"};
  }
  Pems pems;
  for (auto [flag, path, out] :
       {std::tuple{"--tls-cert", &tls.cert, &pems.cert},
        std::tuple{"--tls-key", &tls.key, &pems.key}, std::tuple{"--tls-ca", &tls.ca, &pems.ca}}) {
    auto text = ReadPem(flag, *path);
    if (!text) return text.error();
    *out = std::move(*text);
  }
  return pems;
}

// --- the receiving end ---------------------------------------------------------------------

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
  StageService(Shape expected, StageInput* input) : expected_(expected), input_(input) {}

  grpc::Status Push(grpc::ServerContext* context, grpc::ServerReader<pb::Frame>* reader,
                    pb::PushReply* reply) override {
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
    if (f.stamps_size() % 2 != 0 || f.stamps_size() > 2 * (kMaxStages - 1)) {
      return Invalid(f.seq(), std::to_string(f.stamps_size()) +
                                  " stamps, expected an even number up to " +
                                  std::to_string(2 * (kMaxStages - 1)));
    }
    FrameMeta times;  // the times, checked as every link checks them
    times.shape = s;
    times.t_source_ns = f.t_source_ns();
    times.stamp_count = uint32_t(f.stamps_size() / 2);
    for (int i = 0; i < f.stamps_size(); ++i) times.stamps[i] = f.stamps(i);
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
};

class GrpcReader final : public FrameReader {
 public:
  static Result<std::unique_ptr<FrameReader>> Listen(const std::string& address, Shape expected,
                                                     Policy policy, const TlsFiles& tls,
                                                     const GrpcKeepalive& keepalive) {
    KeepFrameSizedAllocationsWarm();
    std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
    if (tls.Enabled()) {
      auto pems = ReadTls(tls);
      if (!pems) return Error{"--listen " + address + ": " + pems.error().message};
      grpc::SslServerCredentialsOptions options(
          GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      options.pem_root_certs = pems->ca;
      options.pem_key_cert_pairs.push_back({pems->key, pems->cert});
      credentials = grpc::SslServerCredentials(options);
    }
    auto r = std::unique_ptr<GrpcReader>(new GrpcReader(policy));
    r->service_ = std::make_unique<StageService>(expected, &r->input_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(address, credentials, &port);
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
                   (tls.Enabled() ? " (do --tls-cert and --tls-key make a pair?)" : "")};
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

class GrpcWriter final : public FrameWriter {
 public:
  /// `credentials`: null for plaintext.
  GrpcWriter(std::string target, size_t frame_bytes, std::chrono::milliseconds reconnect_timeout,
             std::shared_ptr<grpc::ChannelCredentials> credentials, const GrpcKeepalive& keepalive)
      : target_(std::move(target)),
        frame_bytes_(frame_bytes),
        reconnect_timeout_(reconnect_timeout),
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
    if (!stream_) {
      Status s = Connect();
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
    watchdog_.Arm(context_.get(), Clock::now() + reconnect_timeout_);
    const bool written = stream_->Write(grpc::ByteBuffer(slices, 2));
    const bool timed_out = watchdog_.Disarm();
    if (!written) {
      watchdog_.Arm(context_.get(), Clock::now() + kFinishTimeout);
      grpc::Status st = stream_->Finish();
      watchdog_.Disarm();
      stream_.reset();
      context_.reset();
      ++drops_;
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

  Status Connect() {
    auto deadline = std::chrono::system_clock::now() + reconnect_timeout_;
    if (!unix_path_.empty() ? !DialUnix(deadline) : !WaitForConnected(deadline)) {
      if (Aborted()) return Error{"next stage " + target_ + ": aborted while connecting"};
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

  /// Connects to unix_path_ itself, retrying every 50 ms until `deadline` (once aborted: no
  /// retry, so a stop is never held up by a next stage that is not there), and wraps the
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
      if (retry >= deadline || Aborted()) return false;
      std::this_thread::sleep_until(retry);
    }
  }

  // channel_->WaitForConnected in slices, so an Abort (SIGTERM) ends the wait within 50 ms.
  // Once aborted, a connect (Close's, to deliver the end-of-stream) gets one slice.
  bool WaitForConnected(std::chrono::system_clock::time_point deadline) {
    for (;;) {
      auto slice = std::min(deadline, std::chrono::system_clock::now() + kAbortPoll);
      if (channel_->WaitForConnected(slice)) return true;
      if (slice >= deadline || Aborted()) return false;
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
    context_.reset();
  }

  static constexpr std::chrono::seconds kFinishTimeout{1};
  static constexpr std::chrono::milliseconds kAbortPoll{50};

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
  CallWatchdog watchdog_;  // last: destroyed first, while the context it may cancel lives
};

}  // namespace

Result<std::unique_ptr<FrameReader>> ListenGrpc(const std::string& address, Shape expected,
                                                Policy policy, const TlsFiles& tls,
                                                const GrpcKeepalive& keepalive) {
  return GrpcReader::Listen(address, expected, policy, tls, keepalive);
}

Result<std::unique_ptr<FrameWriter>> ConnectGrpc(const std::string& target, size_t frame_bytes,
                                                 std::chrono::milliseconds reconnect_timeout,
                                                 const TlsFiles& tls,
                                                 const GrpcKeepalive& keepalive) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (tls.Enabled()) {
    auto pems = ReadTls(tls);
    if (!pems) return Error{"--next " + target + ": " + pems.error().message};
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = pems->ca;
    options.pem_private_key = pems->key;
    options.pem_cert_chain = pems->cert;
    credentials = grpc::SslCredentials(options);
  }
  return std::unique_ptr<FrameWriter>(
      std::make_unique<GrpcWriter>(target, frame_bytes, reconnect_timeout, credentials, keepalive));
}

}  // namespace edgefd::runtime
