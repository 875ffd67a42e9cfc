#include "edgefd/runtime/tensor.h"

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>

namespace edgefd::runtime {

std::string Shape::ToString() const {
  return std::to_string(h) + "x" + std::to_string(w) + "x" + std::to_string(c);
}

void Buffer::Free::operator()(float* p) const { std::free(p); }

Buffer::Buffer(size_t elements) { Reserve(elements); }

void Buffer::Reserve(size_t elements) {
  if (elements <= size_) return;
  size_t bytes = (elements * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (p == nullptr) throw std::bad_alloc();
  // Touch every page now: the frame loop must never fault.
  std::memset(p, 0, bytes);
  data_.reset(static_cast<float*>(p));
  size_ = elements;
}

void FillUniform(float* out, size_t n, uint64_t seed, float lo, float hi) {
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  const float span = hi - lo;
  for (size_t i = 0; i < n; ++i) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    out[i] = lo + span * float(z >> 40) * (1.0f / 16777216.0f);
  }
}

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace edgefd::runtime
