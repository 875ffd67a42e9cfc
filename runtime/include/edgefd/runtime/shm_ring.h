#pragma once

// The layout of a /dev/shm frame ring (the shm link of transport.h): a header page, then three
// page-aligned frame slots. It is written down here because it is a wire format: both ends map
// it, and so can any process of the same user. Neither end trusts it. Each keeps the ring's
// geometry and its own slot index in private memory, computed from its own frame size, and
// reads from the header only the exchange word `middle`, the futex words and a frame's meta,
// each validated before use; a value that breaks the protocol marks the ring broken (the
// stage exits 2 naming it). Nothing in the header is a pointer.
//
// Who holds the ring is kept by the kernel, not in the header: the consumer (the --listen end)
// creates the file exclusively and holds an open-file-description lock on byte
// kRingConsumerLockByte for as long as it lives; the producer holds one on
// kRingProducerLockByte. A ring whose consumer lock is free was left by a dead run.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {

/// `magic` of a ring whose header the consumer has initialised (version 3: per-stage durations,
/// no pointers).
inline constexpr uint32_t kRingMagic = 0xEDFD0003;
/// Flag in `middle`: the slot it names holds a frame the consumer has not taken yet.
inline constexpr uint32_t kRingFresh = 4;
/// Bytes of the file locked (F_OFD_SETLK) by the live consumer and the live producer.
inline constexpr long kRingConsumerLockByte = 0;
inline constexpr long kRingProducerLockByte = 1;

/// The start of the shared region.
struct RingHeader {
  uint32_t magic;         ///< kRingMagic, stored last by the consumer
  uint32_t header_bytes;  ///< RingGeometry::header_bytes; checked once when a producer attaches
  uint64_t slot_bytes;    ///< RingGeometry::slot_bytes; idem
  /// Slot index (0..2) of the newest published frame, | kRingFresh while unread. The producer
  /// exchanges its slot in, the consumer exchanges its slot in when it takes a frame.
  std::atomic<uint32_t> middle;
  std::atomic<uint32_t> published;  ///< futex word, bumped on every publish and on close
  std::atomic<uint32_t> taken;      ///< futex word, bumped when the consumer takes a frame
  std::atomic<uint32_t> closed;     ///< 1 once the producer sent end-of-stream
  std::atomic<uint32_t> back;       ///< the producer's slot, for information only
  std::atomic<uint32_t> front;      ///< the consumer's slot: a re-attaching producer avoids it
  std::atomic<uint64_t> drops;      ///< frames replaced before the consumer took them
  FrameMeta meta[3];                ///< per slot: the frame it holds
  uint64_t reserved[3];             ///< zero (version 1 kept in-process pointers here)
};

static_assert(std::is_trivially_copyable_v<FrameMeta>);
static_assert(std::atomic<uint32_t>::is_always_lock_free &&
              std::atomic<uint64_t>::is_always_lock_free);
static_assert(offsetof(RingHeader, middle) == 16 && offsetof(RingHeader, drops) == 40 &&
              offsetof(RingHeader, meta) == 48);

/// Where everything is in a ring for frames of up to `frame_bytes`; each end computes it from
/// its own frame size and never reads it back from the header.
struct RingGeometry {
  size_t frame_bytes = 0;   ///< largest frame a slot carries
  size_t header_bytes = 0;  ///< the header, rounded up to a page
  size_t slot_bytes = 0;    ///< one slot, rounded up to a page
  size_t total_bytes = 0;   ///< the file's size: header + 3 slots

  static RingGeometry For(size_t frame_bytes);
  bool operator==(const RingGeometry&) const = default;
};

}  // namespace edgefd::runtime
