#pragma once

// One way for a thread to wake another that waits in poll(): an eventfd, written to wake, read
// to rearm. Every loop that polls a file descriptor and must also hear "stop" or "something
// changed" (udev monitor, kubelet socket watch, DRA checkpoint watch, HTTP endpoint) uses it.

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd {

class Waker {
 public:
  Waker() = default;

  /// Makes the eventfd (non-blocking, close-on-exec); an Error names errno.
  Status Open();
  /// Makes the fd readable; async-signal-safe and callable from any thread. Wakes that come
  /// before the poller looks are coalesced into one.
  void Wake() const;
  /// Reads the wakes so far, so the next poll blocks again.
  void Drain() const;
  /// The fd to poll for POLLIN; -1 before Open and after Close.
  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  void Close() { fd_.Reset(); }

 private:
  UniqueFd fd_;
};

}  // namespace edgefd
