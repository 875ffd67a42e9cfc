#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "edgefd/common/result.h"
#include "edgefd/runtime/tensor.h"

namespace edgefd::runtime {

constexpr int kMaxStages = 16;

/// What travels with every frame besides its pixels.
struct FrameMeta {
  uint64_t seq = 0;
  int64_t t_source_ns = 0;  ///< CLOCK_MONOTONIC when the source published it
  Shape shape;
  /// Per stage passed so far: receive time, compute-done time.
  uint32_t stamp_count = 0;
  int64_t stamps[2 * kMaxStages] = {};
};

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
  void Abort() { aborted_.store(true); }
  bool Aborted() const { return aborted_.load(); }

 protected:
  std::atomic<bool> aborted_{false};
};

enum class ReadResult { kFrame, kClosed, kTimeout };

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
};

/// A link's two ends over one triple buffer: the producer never waits under kLatest, the
/// consumer always gets the newest frame, and futex wake-ups cost no polling.
struct MailboxPair {
  std::unique_ptr<FrameWriter> writer;
  std::unique_ptr<FrameReader> reader;
};
/// In-process link (threads of one process); zero-copy PublishFrom.
MailboxPair MakeInprocLink(size_t frame_bytes, Policy policy);

/// Shared-memory link: /dev/shm/<name>, three pre-faulted frame slots plus a header. Either
/// side may create it; both must agree on frame_bytes. `unlink_on_close` removes the file when
/// this end is destroyed.
Result<std::unique_ptr<FrameWriter>> OpenShmWriter(const std::string& name, size_t frame_bytes,
                                                   Policy policy);
Result<std::unique_ptr<FrameReader>> OpenShmReader(const std::string& name, size_t frame_bytes,
                                                   Policy policy);
/// Removes /dev/shm/<name> (ignores a missing file).
void UnlinkShm(const std::string& name);

/// gRPC link: a Stage service listening on `address` ("unix:/path" or "host:port"; port 0
/// picks a free port, see Address()) that accepts frames of exactly `expected` shape.
Result<std::unique_ptr<FrameReader>> ListenGrpc(const std::string& address, Shape expected,
                                                Policy policy);
/// gRPC producer pushing to the Stage service at `target`. A failed send is reported and
/// the stream re-established (retrying up to `reconnect_timeout`) on the next Publish.
Result<std::unique_ptr<FrameWriter>> ConnectGrpc(const std::string& target, size_t frame_bytes,
                                                 std::chrono::milliseconds reconnect_timeout);

/// Opens the consuming end for a --listen address: "shm:NAME", else gRPC.
Result<std::unique_ptr<FrameReader>> OpenReader(const std::string& address, Shape shape,
                                                Policy policy);
/// Opens the producing end for a --next address: "shm:NAME", else gRPC.
Result<std::unique_ptr<FrameWriter>> OpenWriter(const std::string& address, Shape shape,
                                                Policy policy,
                                                std::chrono::milliseconds reconnect_timeout);

}  // namespace edgefd::runtime
