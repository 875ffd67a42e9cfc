#include "edgefd/common/backoff.h"

#include <algorithm>

namespace edgefd {

Backoff::Backoff(Policy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  double delay = static_cast<double>(policy_.initial.count());
  for (int i = 0; i < attempt_ && delay < static_cast<double>(policy_.max.count()); ++i) {
    delay *= policy_.multiplier;
  }
  delay = std::min(delay, static_cast<double>(policy_.max.count()));
  ++attempt_;
  // Jitter keeps a fleet of nodes from retrying against a recovering API server in step.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(delay * jitter(rng_)));
}

}  // namespace edgefd
