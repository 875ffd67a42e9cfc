#pragma once

#include <set>
#include <string>
#include <vector>

namespace edgefd {

/// Logs discovery warnings for a program that discovers again and again (the labeller agent,
/// the device plugin): a warning it has not logged before at warn level, a repeat at debug,
/// so a garbage version file or a rule that can never match is said once, not at every
/// hardware event. Remembers at most 1000 warnings (then starts afresh). Not thread-safe.
class WarningLog {
 public:
  void Log(const std::vector<std::string>& warnings);
  /// How many distinct warnings it has logged at warn level (tests).
  size_t logged() const { return logged_; }

 private:
  std::set<std::string> seen_;
  size_t logged_ = 0;
};

}  // namespace edgefd
