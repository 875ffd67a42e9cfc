#include "edgefd/testing/timing.h"

#include <cstdlib>
#include <string>

namespace edgefd::testing {

double Slowdown() {
  static const double slowdown = [] {
    if (const char* env = std::getenv("EDGEFD_TEST_SLOWDOWN")) {
      char* end = nullptr;
      double v = std::strtod(env, &end);
      if (end != env && v >= 1) return v;
    }
#ifdef EDGEFD_TEST_EMULATED
    return kEmulationSlowdown;
#else
    return 1.0;
#endif
  }();
  return slowdown;
}

std::chrono::milliseconds Scaled(std::chrono::milliseconds promise) {
  return std::chrono::milliseconds(static_cast<int64_t>(double(promise.count()) * Slowdown()));
}

}  // namespace edgefd::testing
