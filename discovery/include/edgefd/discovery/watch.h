#pragma once

#include <functional>

#include "edgefd/common/result.h"

namespace edgefd {

/// Something that notices hardware changes (udev monitor, periodic rescan) and says so.
/// Consumers (the labeller's reconcile loop, the device plugin) re-run discovery when told.
class ChangeSource {
 public:
  virtual ~ChangeSource() = default;
  /// Starts watching; `on_change` is called from the source's own thread after a burst of
  /// events has been coalesced. Must not block for long.
  virtual Status Start(std::function<void()> on_change) = 0;
  /// Stops watching; no callback runs after Stop returns.
  virtual void Stop() = 0;
};

}  // namespace edgefd
