#pragma once

// What the two ends of a gRPC link share (grpc_receiver.cc, grpc_sender.cc). Private to the
// runtime library.

#include <malloc.h>

#include <chrono>
#include <mutex>

#include "pipeline.grpc.pb.h"

namespace edgefd::runtime {

namespace pb = ::edgefd::pipeline::v1;

using Clock = std::chrono::steady_clock;

/// gRPC reads each message into freshly malloc'd slices and frees them once parsed. With
/// glibc's defaults a frame-sized block is mmap'd, or carved from a thread arena that is
/// trimmed with madvise(MADV_DONTNEED) when freed; either way every frame's pages are
/// faulted in anew (~13.5 us per 4 KB page here: ~12 ms of kernel time per 3.7 MB frame,
/// spread over the receive path). Fixed thresholds keep frame-sized blocks in the heap
/// and freed pages mapped, so the receive buffers are reused warm. Process-wide, set once
/// by the first gRPC link; frames above 32 MB (glibc's cap) are still mmap'd.
inline void KeepFrameSizedAllocationsWarm() {
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  });
}

}  // namespace edgefd::runtime
