// The default build runs on any CPU of its architecture. On x86-64 the hand-written kernels
// carry AVX-512, AVX2+FMA and baseline clones picked at start-up: the pipeline must run, pick
// the right clone and compute the same frames on CPUs that lack AVX-512 (Haswell) or AVX2
// (Nehalem), emulated by qemu-user.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>

#include "edgefd/testing/paths.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

#if defined(__x86_64__) && !defined(EDGEFD_NATIVE_KERNELS)
using testing::RunCli;

// The checksum printed by `run` (text report), or NaN when absent.
double Checksum(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("checksum (-?[0-9.]+)"))) return std::nan("");
  return std::strtod(m[1].str().c_str(), nullptr);
}
#endif

TEST(Portable, PipelineRunsOnX86CpusWithoutAvx512OrAvx2) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "x86-64 only: the ISA clones and their dispatch exist only there";
#elif defined(EDGEFD_NATIVE_KERNELS)
  GTEST_SKIP() << "built with EDGEFD_NATIVE_KERNELS=ON: such a build runs only on CPUs like "
                  "the build machine's, by design";
#else
  if (std::system("command -v qemu-x86_64-static >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "needs qemu-x86_64-static (apt-get install qemu-user-static) to emulate "
                    "older CPUs";
  }
  const std::string run = "run --model conv --width 64 --height 64 --frames 3";
  int st = 0;
  std::string native = RunCli(run, &st);
  ASSERT_EQ(st, 0) << native;
  const double want = Checksum(native);
  ASSERT_FALSE(std::isnan(want)) << native;
  struct Cpu {
    const char* name;
    const char* isa;
  } cpus[] = {{"Nehalem", "x86-64"}, {"Haswell", "x86-64-v3"}};
  for (const Cpu& cpu : cpus) {
    SCOPED_TRACE(cpu.name);
    // The binary itself, started by the emulator (RunCli prepends the binary's path). A wait
    // policy of the user's own: without one the program re-runs /proc/self/exe to make libgomp
    // passive, and that execve leaves qemu-user (the host runs it natively, on this CPU).
    const std::string qemu = std::string("OMP_WAIT_POLICY=passive qemu-x86_64-static -cpu ") +
                             cpu.name + " " + edgefd::testing::PipelineBin() + " ";
    std::string cmd = qemu + "--version 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string version;
    char buf[512];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) version.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << version;
    EXPECT_NE(version.find(std::string("loops for ") + cpu.isa + "\n"), std::string::npos)
        << version;

    cmd = qemu + run + " 2>&1";
    p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ASSERT_EQ(pclose(p), 0) << out;  // an AVX instruction outside a clone: SIGILL
    EXPECT_NE(out.find("3/3 frames"), std::string::npos) << out;
    // FMA and separate multiply-add round differently: equal within float rounding.
    EXPECT_NEAR(Checksum(out), want, 1e-5 * std::abs(want)) << out;
  }
#endif
}

}  // namespace
}  // namespace edgefd::runtime
