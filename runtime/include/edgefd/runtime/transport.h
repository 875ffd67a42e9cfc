#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"
#include "edgefd/runtime/tensor.h"

namespace edgefd::runtime {

constexpr int kMaxStages = 16;

/// What one stage measured of one frame. Each figure is a duration on the stage's own
/// monotonic clock: stages on other machines (or in other time namespaces) keep clocks that
/// disagree by hours, so nobody ever subtracts one stage's clock reading from another's.
struct StageTimes {
  int64_t wait_ns = 0;     ///< waiting at its input for this frame (idle: upstream is slower)
  int64_t compute_ns = 0;  ///< its layers on this frame
  /// Its previous frame's send to the next stage (this frame's own send ends after the frame
  /// left, so it travels with the next one): transfer plus waiting for the consumer.
  int64_t send_ns = 0;
};

/// Durations a link carries lie in [0, kMaxDurationNs] (one day); a stage saturates what it
/// measures there, and a reader refuses a frame claiming more.
inline constexpr int64_t kMaxDurationNs = int64_t(86400) * 1000000000;

/// What travels with every frame besides its pixels.
struct FrameMeta {
  uint64_t seq = 0;
  int64_t t_source_ns = 0;  ///< the source's CLOCK_MONOTONIC when it published the frame
  /// ClockId() of the source: only a reader on the same clock may subtract t_source_ns.
  uint64_t source_clock = 0;
  int64_t source_send_ns = 0;  ///< the source's previous send (as StageTimes::send_ns)
  Shape shape;
  /// Per stage passed so far, in order.
  uint32_t stage_count = 0;
  StageTimes stages[kMaxStages] = {};
};

/// Names this process's CLOCK_MONOTONIC: the same value in every process of one machine and
/// time namespace (a hash of the boot ID and the namespace's monotonic offset), another on
/// another machine or after `unshare --time`. Never 0.
uint64_t ClockId();

/// Whether the sink, on this process's clock, may subtract `meta.t_source_ns` from its own
/// time: the source ran on the same clock.
inline bool SameClockAsSource(const FrameMeta& meta) { return meta.source_clock == ClockId(); }

/// Why `meta` cannot describe a frame another party sent over a link whose frames hold at most
/// `max_bytes` (a dimension below 1, more floats than fit, more stages than kMaxStages, a time
/// outside [0, 2^62] ns, a duration outside [0, kMaxDurationNs]), or "" when it can. Every
/// frame read from another process is checked.
std::string CheckFrameMeta(const FrameMeta& meta, size_t max_bytes);

/// When a consumer falls behind: keep only the newest frame (drops counted) or make the
/// producer wait.
enum class Policy { kLatest, kBlock };

/// The producing end of a link between two stages.
class FrameWriter {
 public:
  virtual ~FrameWriter() = default;
  /// Where the next frame's pixels go; holds at least the link's frame size. Reused.
  virtual float* Buffer() = 0;
  /// Sends what is in Buffer(). An error is reported, never thrown; the frame is then lost.
  virtual Status Publish(const FrameMeta& meta) = 0;
  /// Sends `data` (meta.shape floats) without staging it in Buffer() where the link allows.
  virtual Status PublishFrom(const FrameMeta& meta, const float* data);
  /// Tells the consumer no more frames follow.
  virtual Status Close() = 0;
  /// Frames the consumer never saw because a newer one replaced them or a send failed.
  virtual uint64_t Drops() const = 0;
  /// Times the link to the consumer was re-established after a failure.
  virtual uint64_t Reconnects() const { return 0; }
  /// Makes a Publish waiting for the consumer (kBlock) return an error now and from then on;
  /// callable from another thread.
  void Abort() {
    aborted_.store(true);
    OnAbort();
  }
  bool Aborted() const { return aborted_.load(); }
  /// Set when the link's shared state was found corrupt (another process wrote a shm ring's
  /// header): every Publish fails from then on, and the program should exit kExitUsage with
  /// this message, which names the link.
  const std::optional<Error>& Fault() const { return fault_; }

 protected:
  /// Called by Abort() on the aborting thread: a link whose sends wait elsewhere than on
  /// aborted_ (a gRPC call) cuts them short here.
  virtual void OnAbort() {}

  std::atomic<bool> aborted_{false};
  std::optional<Error> fault_;
};

/// kBroken: the link's shared state is corrupt (see FrameReader::Fault); nothing more comes.
enum class ReadResult { kFrame, kClosed, kTimeout, kBroken };

/// The consuming end of a link.
class FrameReader {
 public:
  virtual ~FrameReader() = default;
  /// Waits up to `timeout` for a frame newer than the last one returned. On kFrame, `*data`
  /// points at meta->shape floats valid until the next call.
  virtual ReadResult Next(FrameMeta* meta, const float** data,
                          std::chrono::milliseconds timeout) = 0;
  /// Frames that arrived at this end but were replaced before being read.
  virtual uint64_t Drops() const = 0;
  /// Where a producer connects to ("unix:/...", "shm:name", ...), for logs.
  virtual std::string Address() const = 0;
  /// After kBroken: what the peer broke, naming the link; the program should exit kExitUsage.
  const std::optional<Error>& Fault() const { return fault_; }

 protected:
  std::optional<Error> fault_;
};

/// A link's two ends over one triple buffer: the producer never waits under kLatest, the
/// consumer always gets the newest frame, and futex wake-ups cost no polling.
struct MailboxPair {
  std::unique_ptr<FrameWriter> writer;
  std::unique_ptr<FrameReader> reader;
};
/// In-process link (threads of one process); zero-copy PublishFrom.
MailboxPair MakeInprocLink(size_t frame_bytes, Policy policy);

/// Shared-memory link: /dev/shm/<name>, three pre-faulted frame slots after a header (layout:
/// shm_ring.h). The consumer creates the file exclusively (a ring left by a dead run is
/// replaced; one with a live consumer is refused) and removes it when it goes; the producer
/// attaches to a live consumer's ring, waiting up to `wait` for one, and re-attaches by itself
/// when its consumer dies and another takes the name. Both must agree on frame_bytes. Errors
/// name the ring ("shm:NAME: ...").
Result<std::unique_ptr<FrameWriter>> OpenShmWriter(
    const std::string& name, size_t frame_bytes, Policy policy,
    std::chrono::milliseconds wait = std::chrono::seconds(10));
Result<std::unique_ptr<FrameReader>> OpenShmReader(const std::string& name, size_t frame_bytes,
                                                   Policy policy);
/// Removes /dev/shm/<name> (ignores a missing file).
void UnlinkShm(const std::string& name);

/// Who may use a gRPC link. Mutual TLS (--tls-cert, --tls-key, --tls-ca): PEM files of this
/// end's certificate and key, and of the CA that must have signed the peer's. A shared token
/// (--token-file): a file holding the pipeline's secret (a Kubernetes Secret's key), which the
/// sender presents on every stream ("authorization: Bearer TOKEN") and the receiver compares in
/// constant time. Either, both, or (plaintext, anyone may push) neither.
struct LinkSecurity {
  std::string cert;
  std::string key;
  std::string ca;
  std::string token_file;

  bool Tls() const { return !cert.empty() || !key.empty() || !ca.empty(); }
  bool Token() const { return !token_file.empty(); }
  bool operator==(const LinkSecurity&) const = default;
};

/// The token in `path` (--token-file): at most 4 KiB, trailing whitespace dropped, 16 to 1024
/// printable ASCII characters without spaces. An Error names the file and what is wrong.
Result<std::string> ReadLinkToken(const std::string& path);

/// True when `a` equals `b`, in a time that depends on their lengths only.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

/// Keepalive on a gRPC link: a ping after `time` without one, the connection dropped when the
/// peer has not answered `timeout` later (a next stage whose node vanished, a frozen peer).
struct GrpcKeepalive {
  std::chrono::milliseconds time{10000};
  std::chrono::milliseconds timeout{5000};
};

/// gRPC link: a Stage service listening on `address` ("unix:/path" or "host:port"; port 0
/// picks a free port, see Address()) that accepts frames of exactly `expected` shape. A
/// message larger than that frame plus a small margin is refused (RESOURCE_EXHAUSTED) before
/// it is buffered. One upstream at a time: a second Push stream is refused (UNAVAILABLE) while
/// the current one delivers, and takes over (the old one is cancelled) once the current one
/// has been silent for a second, so a stream that never sends cannot starve the real one.
/// Keepalive pings find dead peers. With `tls`, only clients whose certificate the CA signed
/// are served; with a token file, only clients that present its token (UNAUTHENTICATED
/// otherwise, before the stream can take anything over). With neither on an address other
/// than a unix socket or loopback, a warning says that anyone who reaches it may push.
Result<std::unique_ptr<FrameReader>> ListenGrpc(const std::string& address, Shape expected,
                                                Policy policy, const LinkSecurity& tls = {},
                                                const GrpcKeepalive& keepalive = {});
/// gRPC producer pushing to the Stage service at `target`. A failed send is reported and
/// the stream re-established (retrying up to `reconnect_timeout`) on the next Publish; a send
/// the next stage does not take within `reconnect_timeout` fails (the stream is cancelled)
/// rather than hanging. With `tls`, the server's certificate must be signed by the CA and
/// name the target's host; with a token file, every stream presents the token. Abort() cancels
/// a send or a connect in progress.
Result<std::unique_ptr<FrameWriter>> ConnectGrpc(const std::string& target, size_t frame_bytes,
                                                 std::chrono::milliseconds reconnect_timeout,
                                                 const LinkSecurity& tls = {},
                                                 const GrpcKeepalive& keepalive = {});
/// The bytes of the protobuf message ConnectGrpc's writer sends for one frame of `shape` (its
/// data, shape.Bytes(), plus the Frame's other fields as the writer serialises them) after
/// `upstream_stages` stages: what the planner charges a link for, before gRPC's and HTTP/2's
/// framing and the transport's headers (planner.h, LinkBytes).
size_t GrpcFrameMessageBytes(Shape shape, int upstream_stages);

/// Opens the consuming end for a --listen address: "shm:NAME", else gRPC (with `tls`).
Result<std::unique_ptr<FrameReader>> OpenReader(const std::string& address, Shape shape,
                                                Policy policy, const LinkSecurity& tls = {});
/// Opens the producing end for a --next address: "shm:NAME", else gRPC (with `tls`).
Result<std::unique_ptr<FrameWriter>> OpenWriter(const std::string& address, Shape shape,
                                                Policy policy,
                                                std::chrono::milliseconds reconnect_timeout,
                                                const LinkSecurity& tls = {});

}  // namespace edgefd::runtime
