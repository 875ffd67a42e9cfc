#include "edgefd/discovery/warning_log.h"

#include <spdlog/spdlog.h>

namespace edgefd {

void WarningLog::Log(const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) {
    if (seen_.contains(w)) {
      spdlog::debug("{}", w);
      continue;
    }
    if (seen_.size() >= 1000) seen_.clear();
    seen_.insert(w);
    ++logged_;
    spdlog::warn("{}", w);
  }
}

}  // namespace edgefd
