#pragma once

// How many compute threads a stage runs and how its idle threads wait (DESIGN.md, "Runtime
// contract"): sized from what the process may really use, sleeping rather than spinning, so
// that on shared cores or under a CPU limit the default is never slower than --threads 1.

#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/runtime/devices.h"

namespace edgefd::runtime {

/// The CPU time a cgroup grants: quota / period CPUs, and the file that said so.
struct CgroupQuota {
  double cpus = 0;   ///< e.g. 1.5 for "150000 100000"
  std::string file;  ///< the file it was read from (under the root it was read from)
};

/// What bounds this process's compute threads, read once at start.
struct CpuLimits {
  std::vector<int> cpuset;           ///< the CPUs sched_getaffinity allows
  std::optional<CgroupQuota> quota;  ///< the tightest quota on the cgroup's path; none: no limit
  std::vector<int> allocated;        ///< cores EDGEFD_*_CPUS gave for compute; empty: none named
  std::vector<std::string> ignored;  ///< cgroup files that could not be used, and why
};

/// The CPU quota of this process's cgroup, read under `root` ("/" in production, a fixture tree
/// in tests): `proc/self/cgroup` names the cgroup; cgroup v2 `cpu.max` (under `sys/fs/cgroup` or
/// `sys/fs/cgroup/unified`) and v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (under
/// `sys/fs/cgroup/cpu`, `cpu,cpuacct`, ...) of that cgroup and of each ancestor up to the
/// mount, and the tightest wins. When the named cgroup is not below the mount (a container
/// with its own cgroup mounted as the root), the mount itself is that cgroup. Unreadable or
/// malformed contents are appended to `ignored` and skipped: never fatal.
std::optional<CgroupQuota> ReadCgroupQuota(const std::string& root,
                                           std::vector<std::string>* ignored);

/// The cpuset (sched_getaffinity), ReadCgroupQuota(root) and the allocation's compute cores.
CpuLimits ReadCpuLimits(const std::string& root, const Allocation& allocation);

/// Threads a quota of `cpus` CPUs is worth: rounded to the nearest whole CPU (a half rounds
/// up: 1.5 -> 2, 1.4 -> 1), at least 1. Under CFS every thread of the cgroup stops when the
/// quota is spent, so a team a little over the quota still gets all of it; one more than half a
/// CPU over would mostly wait.
int QuotaThreads(double cpus);

/// The compute threads of each stage and why.
struct ThreadChoice {
  int threads = 1;
  bool requested = false;  ///< --threads N chose it
  std::string reason;      ///< "1 thread: cpuset 0-1 -> 2, cgroup quota 1.0 CPU -> 1"
  CpuLimits limits;
};

/// `requested` > 0 (--threads N) wins. Otherwise the smallest of the cpuset's size, the quota's
/// QuotaThreads and the number of allocated cores, shared among `stages` stages of this run
/// (at least 1 each).
ThreadChoice ChooseThreads(const CpuLimits& limits, int requested, int stages);

/// The choice for the report: threads, chosen_by ("--threads" or "limits"), reason, cpuset,
/// cgroup quota (CPUs and file, or null), allocated cores, ignored files, wait policy.
edgefd::Json ThreadChoiceJson(const ThreadChoice& choice);

/// Makes idle OpenMP threads sleep instead of spin, from the first line of main: unless the user
/// set OMP_WAIT_POLICY or GOMP_SPINCOUNT, sets OMP_WAIT_POLICY=passive and re-runs this program
/// (/proc/self/exe, same `argv`), because libgomp reads its environment once, before main.
/// Returns only when nothing needed doing or the re-run failed (WaitPolicy then says why).
void DefaultToPassiveWait(char** argv);

/// How idle OpenMP threads wait in this process, for logs and reports: "passive (edgefd
/// default)", "OMP_WAIT_POLICY=active (set by the user)", or libgomp's own default.
std::string WaitPolicy();

}  // namespace edgefd::runtime
