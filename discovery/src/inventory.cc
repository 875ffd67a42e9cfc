#include "edgefd/discovery/inventory.h"

#include <algorithm>

namespace edgefd {

int CpuTopology::OnlineCount() const {
  return static_cast<int>(
      std::count_if(cores.begin(), cores.end(), [](const CpuCore& c) { return c.online; }));
}

}  // namespace edgefd
