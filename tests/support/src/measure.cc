#include "edgefd/testing/measure.h"

#include <algorithm>
#include <fstream>
#include <string>

namespace edgefd::testing {

LatencyStats Summarise(std::vector<double> samples) {
  LatencyStats s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  auto at = [&](double p) { return samples[std::min(n - 1, static_cast<size_t>(n * p))]; };
  s.n = n;
  s.median = at(0.5);
  s.p99 = at(0.99);
  s.max = samples.back();
  return s;
}

Json LatencyJson(const LatencyStats& stats, int digits) {
  return Json{{"n", stats.n},
              {"median", RoundTo(stats.median, digits)},
              {"p99", RoundTo(stats.p99, digits)},
              {"max", RoundTo(stats.max, digits)}};
}

long ProcStatus(pid_t pid, std::string_view field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  const std::string key = std::string(field) + ":";
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(key)) return std::stol(line.substr(key.size()));
  }
  return -1;
}

}  // namespace edgefd::testing
