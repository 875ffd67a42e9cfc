// The two ends of a triple-buffer link, in-process or over a /dev/shm ring (ring_region.h,
// layout and trust model: shm_ring.h), with futex wake-ups.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>

#include "edgefd/runtime/shm_ring.h"
#include "edgefd/runtime/transport.h"
#include "ring_region.h"

namespace edgefd::runtime {
namespace {

std::string CorruptRing(const Region& region, const std::string& what) {
  std::string out = region.name() + ": corrupt ring: " + what;
  if (region.name().rfind("shm:", 0) == 0) {
    out += " (is another process writing " + std::string(kShmDir) + region.name().substr(4) + "?)";
  }
  return out;
}

/// Finds the producer a new ring when its consumer is gone (shm only).
using Reattach =
    std::function<Result<ShmRing::Attached>(std::chrono::milliseconds, const std::atomic<bool>*)>;

class MailboxWriter final : public FrameWriter {
 public:
  MailboxWriter(std::shared_ptr<Region> region, uint32_t back, Policy policy, bool zero_copy,
                Reattach reattach = {}, std::chrono::milliseconds reattach_wait = {})
      : region_(std::move(region)),
        back_(back),
        policy_(policy),
        zero_copy_(zero_copy),
        reattach_(std::move(reattach)),
        reattach_wait_(reattach_wait) {}

  float* Buffer() override { return region_->Slot(back_); }

  Status Publish(const FrameMeta& meta) override { return Put(meta, nullptr); }

  Status PublishFrom(const FrameMeta& meta, const float* data) override {
    if (!zero_copy_) return FrameWriter::PublishFrom(meta, data);
    return Put(meta, data);
  }

  Status Close() override {
    if (fault_) return *fault_;
    RingHeader* h = region_->header();
    h->closed.store(1);
    h->published.fetch_add(1);
    FutexWakeAll(&h->published);
    return Ok{};
  }

  uint64_t Drops() const override { return region_->header()->drops.load() + lost_; }
  uint64_t Reconnects() const override { return reconnects_; }

 private:
  Status Broken(const std::string& what) {
    fault_ = Error{CorruptRing(*region_, what)};
    return *fault_;
  }

  Status Put(const FrameMeta& meta, const float* external) {
    if (fault_) return *fault_;
    if (meta.shape.Bytes() > region_->geometry().frame_bytes) {
      return Error{region_->name() + ": frame " + meta.shape.ToString() +
                   " does not fit the link's slots"};
    }
    if (Status s = KeepConsumer(meta); !s) return s;
    RingHeader* h = region_->header();
    if (policy_ == Policy::kBlock) {
      // Wait until the consumer took the previous frame (it may still be reading it: that
      // one is its front slot, not ours).
      auto next_check = std::chrono::steady_clock::now() + kPeerCheck;
      while (h->middle.load() & kRingFresh) {
        if (aborted_.load()) return Error{"link aborted while waiting for the consumer"};
        if (region_->Lost()) return Broken("the ring's file was truncated");
        uint32_t t = h->taken.load();
        if (!(h->middle.load() & kRingFresh)) break;
        FutexWait(&h->taken, t, kPeerCheck);
        if (std::chrono::steady_clock::now() >= next_check) {
          next_check = std::chrono::steady_clock::now() + kPeerCheck;
          if (!region_->ConsumerAlive()) {
            if (Status s = Reconnect(meta); !s) return s;
            h = region_->header();
          }
        }
      }
    }
    h->meta[back_] = meta;
    region_->external[back_] = external;
    const uint32_t prev = h->middle.exchange(back_ | kRingFresh, std::memory_order_acq_rel);
    h->published.fetch_add(1, std::memory_order_release);
    FutexWakeAll(&h->published);
    const uint32_t slot = prev & ~kRingFresh;
    if (slot > 2 || slot == back_) {
      return Broken("the exchange word held " + std::to_string(prev) +
                    ", which names no slot the producer may take");
    }
    if (prev & kRingFresh) h->drops.fetch_add(1);
    back_ = slot;
    h->back.store(slot, std::memory_order_relaxed);
    return Ok{};
  }

  // A consumer that dies takes its lock with it; every kPeerCheck the producer looks, and when
  // it is gone waits for a new one (as a gRPC link reconnects).
  Status KeepConsumer(const FrameMeta& meta) {
    if (region_->Lost()) return Broken("the ring's file was truncated");
    if (!reattach_) return Ok{};
    const auto now = std::chrono::steady_clock::now();
    if (now < next_peer_check_) return Ok{};
    next_peer_check_ = now + kPeerCheck;
    return region_->ConsumerAlive() ? Status(Ok{}) : Reconnect(meta);
  }

  Status Reconnect(const FrameMeta& meta) {
    if (!reattach_) return Ok{};
    auto attached = reattach_(reattach_wait_, &aborted_);
    if (!attached) {
      ++lost_;
      return Error{region_->name() + ": the consumer is gone; frame " + std::to_string(meta.seq) +
                   " lost (" + attached.error().message + ")"};
    }
    // The frame may already be in our old slot: carry it over.
    std::shared_ptr<Region> old = std::move(region_);
    const float* pixels = old->Slot(back_);
    region_ = std::move(attached->ring);
    back_ = attached->back;
    std::memcpy(Buffer(), pixels, std::min(meta.shape.Bytes(), region_->geometry().frame_bytes));
    ++reconnects_;
    spdlog::info("{}: a new consumer took the ring; carrying on", region_->name());
    return Ok{};
  }

  static constexpr std::chrono::milliseconds kPeerCheck{50};

  std::shared_ptr<Region> region_;
  uint32_t back_;  // ours alone; never read back from the header
  Policy policy_;
  bool zero_copy_;
  Reattach reattach_;
  std::chrono::milliseconds reattach_wait_;
  std::chrono::steady_clock::time_point next_peer_check_{};
  uint64_t lost_ = 0;
  uint64_t reconnects_ = 0;
};

class MailboxReader final : public FrameReader {
 public:
  explicit MailboxReader(std::shared_ptr<Region> region) : region_(std::move(region)) {}

  ReadResult Next(FrameMeta* meta, const float** data, std::chrono::milliseconds timeout) override {
    if (fault_) return ReadResult::kBroken;
    RingHeader* h = region_->header();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (region_->Lost()) return Broken("the ring's file was truncated");
      if (h->middle.load(std::memory_order_acquire) & kRingFresh) {
        const uint32_t prev = h->middle.exchange(front_, std::memory_order_acq_rel);
        const uint32_t slot = prev & ~kRingFresh;
        if (!(prev & kRingFresh) || slot > 2 || slot == front_) {
          return Broken("the exchange word held " + std::to_string(prev) +
                        ", which names no slot the consumer may take");
        }
        front_ = slot;
        h->front.store(slot, std::memory_order_relaxed);
        h->taken.fetch_add(1);
        FutexWakeAll(&h->taken);
        // One copy, then only the copy: what is checked is what is used.
        FrameMeta m = h->meta[slot];
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (std::string why = CheckFrameMeta(m, region_->geometry().frame_bytes); !why.empty()) {
          return Broken("frame " + std::to_string(m.seq) + ": " + why);
        }
        *meta = m;
        *data = region_->external[slot] != nullptr ? region_->external[slot] : region_->Slot(slot);
        return ReadResult::kFrame;
      }
      uint32_t p = h->published.load(std::memory_order_acquire);
      if (h->middle.load(std::memory_order_acquire) & kRingFresh) continue;
      if (h->closed.load()) return ReadResult::kClosed;
      auto left = deadline - std::chrono::steady_clock::now();
      if (left <= std::chrono::nanoseconds(0)) return ReadResult::kTimeout;
      FutexWait(&h->published, p, left);
    }
  }

  uint64_t Drops() const override { return region_->header()->drops.load(); }
  std::string Address() const override { return region_->name(); }

 private:
  ReadResult Broken(const std::string& what) {
    fault_ = Error{CorruptRing(*region_, what)};
    return ReadResult::kBroken;
  }

  std::shared_ptr<Region> region_;
  uint32_t front_ = 2;  // ours alone (InitHeader's layout); never read back from the header
};

}  // namespace

MailboxPair MakeInprocLink(size_t frame_bytes, Policy policy) {
  auto region = std::make_shared<HeapRegion>(RingGeometry::For(frame_bytes));
  return {std::make_unique<MailboxWriter>(region, 0, policy, true),
          std::make_unique<MailboxReader>(region)};
}

Result<std::unique_ptr<FrameWriter>> OpenShmWriter(const std::string& name, size_t frame_bytes,
                                                   Policy policy, std::chrono::milliseconds wait) {
  const RingGeometry g = RingGeometry::For(frame_bytes);
  auto attached = ShmRing::Attach(name, g, wait, nullptr);
  if (!attached) return attached.error();
  Reattach reattach = [name, g](std::chrono::milliseconds w, const std::atomic<bool>* abort) {
    return ShmRing::Attach(name, g, w, abort);
  };
  return std::unique_ptr<FrameWriter>(std::make_unique<MailboxWriter>(
      std::move(attached->ring), attached->back, policy, false, std::move(reattach), wait));
}

Result<std::unique_ptr<FrameReader>> OpenShmReader(const std::string& name, size_t frame_bytes,
                                                   Policy) {
  auto ring = ShmRing::Create(name, RingGeometry::For(frame_bytes));
  if (!ring) return ring.error();
  return std::unique_ptr<FrameReader>(std::make_unique<MailboxReader>(std::move(*ring)));
}

}  // namespace edgefd::runtime
