// What this machine can do, measured in the same run as the figures that are quoted against
// it (DESIGN.md, "What these machines can do": machines of one kind differ by 2x).
#pragma once

#include <string>

namespace edgefd::bench {

struct MachinePeak {
  int threads = 1;         ///< cores used (the process's CPU affinity)
  double fma_gflops = 0;   ///< best of several runs of independent FMA chains on every core
  std::string fma_isa;     ///< the vector width that reached it ("avx512f", "avx2+fma", ...)
  double memcpy_gbps = 0;  ///< best memcpy of 64 MiB per core, bytes copied per second
};

/// Takes about a second. Uses the widest FMA the CPU has (by cpuid on x86-64), so the peak is
/// what a kernel library could reach, not what the default compile target allows.
MachinePeak MeasureMachinePeak();

}  // namespace edgefd::bench
