#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace edgefd {

/// Capped exponential backoff with full jitter in [delay/2, delay]: the labeller's retries
/// and the DRA plugin's workers.
class Backoff {
 public:
  struct Policy {
    std::chrono::milliseconds initial{500};
    std::chrono::milliseconds max{30000};
    double multiplier = 2.0;
  };
  explicit Backoff(Policy policy, uint64_t seed = std::random_device{}());
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }

 private:
  Policy policy_;
  int attempt_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace edgefd
