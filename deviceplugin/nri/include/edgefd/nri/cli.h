#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "edgefd/common/health.h"
#include "edgefd/common/result.h"
#include "edgefd/nri/service.h"

namespace edgefd::nri {

/// The whole command line of edgefd-nri; main() only calls this. Exit codes: 0 after a clean
/// stop (SIGTERM, SIGINT), 1 on a runtime failure, 2 on bad usage or a configuration it
/// refuses (the kubelet's static CPU manager, no online cores).
int RunNriCli(int argc, char** argv);

/// The online cores from `root`/sys/devices/system/cpu/online.
Result<std::vector<int>> ReadOnlineCpus(const std::filesystem::path& root);

/// An Error when the kubelet's CPU manager (`kubelet_dir`/cpu_manager_state) runs the static
/// policy, which sets every container's cpuset itself and would undo ours (and we its); also
/// when the file is there but unreadable. OK when it is absent or names another policy.
Status CheckCpuManager(const std::filesystem::path& kubelet_dir);

/// /readyz and /metrics of edgefd-nri: ready unless the NRI socket exists and the plugin is
/// not (yet) synchronized with the runtime behind it.
HealthChecks NriHealth(const NriService& service, const Metrics& metrics,
                       std::filesystem::path socket);

}  // namespace edgefd::nri
