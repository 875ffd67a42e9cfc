#pragma once

// The memory behind a triple-buffer link (layout and trust model: shm_ring.h): a ring on the
// heap for threads of one process, or in /dev/shm for processes, and the futex calls both
// wait with. Private to the runtime library; the two ends that use it are in mailbox.cc.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/runtime/shm_ring.h"

namespace edgefd::runtime {

inline constexpr char kShmDir[] = "/dev/shm/";

/// Waits up to `timeout` while `*word` holds `expected` (a futex other processes may share).
void FutexWait(std::atomic<uint32_t>* word, uint32_t expected, std::chrono::nanoseconds timeout);
/// Wakes every waiter on `*word`.
void FutexWakeAll(std::atomic<uint32_t>* word);

class SigbusGuard;

class Region {
 public:
  Region(RingGeometry geometry, std::string name) : geometry_(geometry), name_(std::move(name)) {}
  virtual ~Region() = default;
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;

  RingHeader* header() const { return static_cast<RingHeader*>(base_); }
  const RingGeometry& geometry() const { return geometry_; }
  /// Slot `i`; callers pass only indices they checked to be below 3.
  float* Slot(uint32_t i) const {
    return reinterpret_cast<float*>(static_cast<char*>(base_) + geometry_.header_bytes +
                                    size_t(i) * geometry_.slot_bytes);
  }
  /// "shm:NAME" or "inproc": how errors name the link.
  const std::string& name() const { return name_; }
  /// Whether a consumer still holds the ring (in-process: always).
  virtual bool ConsumerAlive() const { return true; }
  /// Whether the mapping was lost (the file truncated under it).
  virtual bool Lost() const { return false; }

  /// In-process zero-copy frames: pointers stay in this process's memory, never in the header.
  const float* external[3] = {nullptr, nullptr, nullptr};

 protected:
  void* base_ = nullptr;
  RingGeometry geometry_;
  std::string name_;
};

/// An in-process ring: pre-faulted heap memory.
class HeapRegion final : public Region {
 public:
  explicit HeapRegion(const RingGeometry& g);
  ~HeapRegion() override;
};

/// A ring in /dev/shm, shared by a consumer process and a producer process.
class ShmRing final : public Region {
 public:
  /// What a producer gets: the ring and the slot it may write (neither the consumer's nor the
  /// one holding the newest frame).
  struct Attached {
    std::shared_ptr<ShmRing> ring;
    uint32_t back;
  };

  /// The consumer's end: creates /dev/shm/<name> exclusively, replacing a ring no live consumer
  /// holds (left by a run that died), and holds the consumer lock until destroyed.
  static Result<std::shared_ptr<ShmRing>> Create(const std::string& name, const RingGeometry& g);

  /// The producer's end: waits up to `wait` for a live consumer's ring of this geometry, then
  /// holds the producer lock. Errors that waiting cannot cure come at once.
  static Result<Attached> Attach(const std::string& name, const RingGeometry& g,
                                 std::chrono::milliseconds wait, const std::atomic<bool>* abort);

  ~ShmRing() override;

  bool ConsumerAlive() const override;
  bool Lost() const override;

 private:
  ShmRing(const std::string& name, const RingGeometry& g);

  Status Map();

  // One look at /dev/shm/<name>: an Error to give up now, nullopt to wait (`*problem` says why).
  static Result<std::optional<Attached>> TryAttach(const std::string& name, const RingGeometry& g,
                                                   std::string* problem);

  std::string shm_name_;
  UniqueFd fd_;
  bool owner_ = false;
  std::unique_ptr<SigbusGuard> guard_;
};

}  // namespace edgefd::runtime
