#pragma once

#include <chrono>

namespace edgefd::testing {

/// How many times slower than natively this test binary runs: kEmulationSlowdown when the
/// tests were cross-built to run under qemu-user, else 1. EDGEFD_TEST_SLOWDOWN in the
/// environment (a number >= 1) overrides it: a slow board, a sanitizer build.
double Slowdown();

/// Under qemu-user (scripts/test.sh --arch arm64, beside two busy processes) a run's SIGTERM
/// path took up to 2 s where it takes 0.1 s natively; starting a process, the bulk of it,
/// costs 10-20 times more there. Deadlines are multiplied by this, so a test under emulation
/// still fails on a program that hangs, while a native run keeps the promise itself.
inline constexpr double kEmulationSlowdown = 5;

/// A deadline for something the program promises to do within `promise` on a loaded native
/// machine, scaled for this one. A test's timing assertion states the promise, never a
/// measured speed (speed goes to bench/).
std::chrono::milliseconds Scaled(std::chrono::milliseconds promise);

}  // namespace edgefd::testing
