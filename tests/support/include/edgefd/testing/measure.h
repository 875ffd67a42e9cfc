#pragma once

// What the benches report, computed one way: latency percentiles and a process's memory.

#include <sys/types.h>

#include <cstddef>
#include <string_view>
#include <vector>

#include "edgefd/common/json.h"

namespace edgefd::testing {

/// Median, 99th percentile and maximum of a set of samples (in the samples' unit). A
/// percentile p is the sorted samples' element at index floor(n * p): the median of 4 samples
/// is the third, p99 of 100 samples is the largest.
struct LatencyStats {
  size_t n = 0;
  double median = 0, p99 = 0, max = 0;
};

/// All zero for no samples.
LatencyStats Summarise(std::vector<double> samples);

/// {"n": .., "median": .., "p99": .., "max": ..}, rounded to `digits` decimals, for --json.
Json LatencyJson(const LatencyStats& stats, int digits = 3);

/// A field of /proc/<pid>/status, in the unit it is written in (kB for VmRSS, RssAnon, VmHWM;
/// a count for Threads); -1 when the process or the field is not there.
long ProcStatus(pid_t pid, std::string_view field);

}  // namespace edgefd::testing
