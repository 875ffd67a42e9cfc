#include "machine_peak.h"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <functional>
#include <latch>
#include <thread>
#include <vector>

namespace edgefd::bench {
namespace {

// Twelve independent multiply-add chains of V: enough to keep two FMA pipes of four cycles'
// latency busy. a * m + c contracts to one FMA where the target has it. The factors come from
// memory the compiler cannot see through: with constants it folded the whole loop away.
constexpr int kChains = 12;
volatile float g_mul = 0.999f, g_add = 0.001f;

template <typename V>
[[gnu::always_inline]] inline float FmaChains(long iterations) {
  const float mul = g_mul, add = g_add;
  V a[kChains];
  for (int k = 0; k < kChains; ++k) a[k] = V{} + add * float(k + 1);
  const V m = V{} + mul, c = V{} + add;
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 12
    for (int k = 0; k < kChains; ++k) a[k] = a[k] * m + c;
  }
  V s = a[0];
  for (int k = 1; k < kChains; ++k) s += a[k];
  float r = 0;
  for (size_t l = 0; l < sizeof(V) / sizeof(float); ++l) r += s[l];
  return r;
}

typedef float V4 __attribute__((vector_size(16)));
float Fma128(long n) { return FmaChains<V4>(n); }
#if defined(__x86_64__)
typedef float V8 __attribute__((vector_size(32)));
typedef float V16 __attribute__((vector_size(64)));
__attribute__((target("avx2,fma"))) float Fma256(long n) { return FmaChains<V8>(n); }
__attribute__((target("avx512f"))) float Fma512(long n) { return FmaChains<V16>(n); }
#endif

struct FmaKernel {
  const char* isa;
  int lanes;
  float (*run)(long);
};

FmaKernel WidestFma() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512f", 16, Fma512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return {"avx2+fma", 8, Fma256};
  }
  return {"sse2 (mul+add)", 4, Fma128};
#elif defined(__aarch64__)
  return {"neon fmla", 4, Fma128};
#else
  return {"baseline", 4, Fma128};
#endif
}

int AllowedCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

// Runs body(thread) on `threads` threads started together; returns the wall seconds.
double TimeOnAll(int threads, const std::function<void(int)>& body) {
  std::latch ready(threads + 1);
  std::latch go(1);
  std::vector<std::thread> team;
  for (int t = 0; t < threads; ++t) {
    team.emplace_back([&, t] {
      ready.count_down();
      go.wait();
      body(t);
    });
  }
  ready.arrive_and_wait();  // the team is up: start the clock
  auto t0 = std::chrono::steady_clock::now();
  go.count_down();
  for (std::thread& th : team) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

MachinePeak MeasureMachinePeak() {
  MachinePeak p;
  p.threads = AllowedCpus();
  FmaKernel k = WidestFma();
  p.fma_isa = k.isa;
  const long iterations = 20'000'000;
  std::vector<float> sink(p.threads);
  // The best of many short runs: on a shared machine most runs lose a core to someone else.
  for (int rep = 0; rep < 25; ++rep) {
    double s = TimeOnAll(p.threads, [&](int t) { sink[t] = k.run(iterations); });
    double flops = 2.0 * k.lanes * kChains * double(iterations) * p.threads;
    p.fma_gflops = std::max(p.fma_gflops, flops / s / 1e9);
  }
  if (sink[0] == 42.0f) p.fma_isa += " ";  // keep the results alive

  const size_t bytes = size_t(64) << 20;
  std::vector<std::vector<char>> src(p.threads), dst(p.threads);
  for (int t = 0; t < p.threads; ++t) {
    src[t].assign(bytes, char(t + 1));  // pre-faulted: fresh pages cost more than the copy
    dst[t].assign(bytes, 0);
  }
  for (int rep = 0; rep < 5; ++rep) {
    double s =
        TimeOnAll(p.threads, [&](int t) { std::memcpy(dst[t].data(), src[t].data(), bytes); });
    p.memcpy_gbps = std::max(p.memcpy_gbps, double(bytes) * p.threads / s / 1e9);
  }
  return p;
}

}  // namespace edgefd::bench
