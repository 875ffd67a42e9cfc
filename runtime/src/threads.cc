#include "edgefd/runtime/threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <thread>

namespace edgefd::runtime {
namespace {

namespace fs = std::filesystem;

// cgroup files are a line or two; anything longer is not one.
constexpr size_t kMaxCgroupFile = 4096;

std::optional<std::string> ReadSmall(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(kMaxCgroupFile + 1, '\0');
  in.read(text.data(), std::streamsize(text.size()));
  text.resize(size_t(in.gcount()));
  return text;
}

std::string_view Trim(std::string_view s) {
  const size_t first = s.find_first_not_of(" \t\n"), last = s.find_last_not_of(" \t\n");
  return first == std::string_view::npos ? std::string_view{} : s.substr(first, last - first + 1);
}

// A whole (trimmed) decimal number, or nullopt.
// Contents quoted in a log line: at most 60 bytes of them.
std::string Quote(std::string_view text) {
  text = Trim(text);
  return "'" + std::string(text.substr(0, 60)) + (text.size() > 60 ? "...'" : "'");
}

std::optional<int64_t> ParseInt(std::string_view s) {
  s = Trim(s);
  int64_t v = 0;
  const char* end = s.data() + s.size();
  if (s.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(s.data(), end, v);  // ec: out of range, or not a number
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

// One limit: quota and period in microseconds. nullopt quota: no limit ("max", -1).
struct Limit {
  std::optional<int64_t> quota;
  int64_t period = 0;
};

// Keeps the tighter of `found` and `quota` / `period` read from `file`.
void KeepTighter(std::optional<CgroupQuota>& found, const Limit& limit, const fs::path& file) {
  if (!limit.quota) return;
  double cpus = double(*limit.quota) / double(limit.period);
  if (!found || cpus < found->cpus) found = CgroupQuota{cpus, file.string()};
}

// cgroup v2 cpu.max: "max 100000" or "150000 100000".
std::optional<Limit> ParseCpuMax(std::string_view text) {
  text = Trim(text);
  size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::optional<int64_t> period = ParseInt(text.substr(space + 1));
  if (!period || *period <= 0) return std::nullopt;
  std::string_view quota = text.substr(0, space);
  if (quota == "max") return Limit{std::nullopt, *period};
  std::optional<int64_t> q = ParseInt(quota);
  if (!q || *q <= 0) return std::nullopt;
  return Limit{q, *period};
}

// cgroup v1: cpu.cfs_quota_us ("-1": none) and cpu.cfs_period_us.
std::optional<Limit> ParseCfs(std::string_view quota_text, std::string_view period_text) {
  std::optional<int64_t> quota = ParseInt(quota_text), period = ParseInt(period_text);
  if (!quota || !period || *period <= 0 || (*quota <= 0 && *quota != -1)) return std::nullopt;
  if (*quota == -1) return Limit{std::nullopt, *period};
  return Limit{quota, *period};
}

// Reads one cgroup directory's limit; nullopt when it has none to read (no such files).
using DirReader = std::optional<Limit> (*)(const fs::path& dir, std::vector<std::string>* ignored,
                                           fs::path* file);

std::optional<Limit> ReadV2Dir(const fs::path& dir, std::vector<std::string>* ignored,
                               fs::path* file) {
  *file = dir / "cpu.max";
  std::optional<std::string> text = ReadSmall(*file);
  if (!text) return std::nullopt;
  std::optional<Limit> limit = ParseCpuMax(*text);
  if (!limit)
    ignored->push_back(file->string() + ": '" + std::string(Trim(*text)) +
                       "' is not 'max PERIOD' or 'QUOTA PERIOD'");
  return limit;
}

std::optional<Limit> ReadV1Dir(const fs::path& dir, std::vector<std::string>* ignored,
                               fs::path* file) {
  *file = dir / "cpu.cfs_quota_us";
  std::optional<std::string> quota = ReadSmall(*file);
  std::optional<std::string> period = ReadSmall(dir / "cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  std::optional<Limit> limit = ParseCfs(*quota, *period);
  if (!limit) {
    ignored->push_back(file->string() + ": " + Quote(*quota) + " over period " + Quote(*period) +
                       " is not a CFS quota");
  }
  return limit;
}

// Walks from the cgroup `path` (as /proc/self/cgroup names it) up to `mount`, keeping the
// tightest limit: a parent's quota bounds every child.
void WalkUp(const fs::path& mount, const std::string& path, DirReader read,
            std::optional<CgroupQuota>& found, std::vector<std::string>* ignored) {
  fs::path dir = mount / fs::path(path).relative_path();
  std::error_code ec;
  // In a container the mount is its own cgroup, and the host's path for it does not exist.
  if (!fs::is_directory(dir, ec)) dir = mount;
  // Without a trailing separator ("a/b/" has an empty last name), so the walk meets `stop`.
  auto normal = [](const fs::path& p) {
    fs::path n = p.lexically_normal();
    return n.has_filename() || !n.has_parent_path() ? n : n.parent_path();
  };
  const fs::path stop = normal(mount);
  for (dir = normal(dir);; dir = dir.parent_path()) {
    fs::path file;
    if (std::optional<Limit> limit = read(dir, ignored, &file)) KeepTighter(found, *limit, file);
    if (dir == stop || !dir.has_relative_path() || dir == dir.parent_path()) break;
  }
}

// A cgroup path must be absolute and stay below its mount.
bool SafeCgroupPath(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  for (const fs::path& part : fs::path(path)) {
    if (part == "..") return false;
  }
  return true;
}

std::optional<fs::path> FirstDir(const std::vector<fs::path>& candidates) {
  std::error_code ec;
  for (const fs::path& d : candidates) {
    if (fs::is_directory(d, ec)) return d;
  }
  return std::nullopt;
}

bool HasController(std::string_view list, std::string_view name) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (list.substr(0, comma) == name) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

std::string FormatCpus(double cpus) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", cpus);  // "1.50" -> "1.5", "1.00" -> "1.0"
  std::string s = buf;
  if (s.size() > 1 && s.back() == '0' && s[s.size() - 2] != '.') s.pop_back();
  return s;
}

// "0-3,6": the kernel's list syntax, short for a large cpuset.
std::string CpuRange(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

std::string Threads(int n) { return std::to_string(n) + (n == 1 ? " thread" : " threads"); }

// Set beside OMP_WAIT_POLICY=passive when edgefd chose it, so reports tell it from a user's.
constexpr char kDefaultedMarker[] = "EDGEFD_DEFAULT_WAIT_POLICY";
std::string g_exec_error;

}  // namespace

std::optional<CgroupQuota> ReadCgroupQuota(const std::string& root,
                                           std::vector<std::string>* ignored) {
  const fs::path base = root.empty() ? fs::path("/") : fs::path(root);
  const fs::path self = base / "proc/self/cgroup";
  std::optional<std::string> text = ReadSmall(self);
  if (!text) return std::nullopt;  // not Linux, or no cgroups: nothing limits us
  const fs::path cgroup = base / "sys/fs/cgroup";
  std::optional<CgroupQuota> found;
  std::string_view rest = *text;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    if (Trim(line).empty()) continue;
    // "ID:CONTROLLERS:PATH"; the path may itself hold ':'.
    size_t c1 = line.find(':'), c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos || !SafeCgroupPath(line.substr(c2 + 1))) {
      ignored->push_back(self.string() + ": " + Quote(line) + " is not ID:CONTROLLERS:/PATH");
      continue;
    }
    const std::string_view id = line.substr(0, c1), controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string path(line.substr(c2 + 1));
    if (id == "0" && controllers.empty()) {
      std::error_code ec;
      const bool unified_root = fs::exists(cgroup / "cgroup.controllers", ec);
      if (auto mount = FirstDir(unified_root ? std::vector<fs::path>{cgroup}
                                             : std::vector<fs::path>{cgroup / "unified"})) {
        WalkUp(*mount, path, ReadV2Dir, found, ignored);
      }
    } else if (HasController(controllers, "cpu")) {
      if (auto mount = FirstDir({cgroup / std::string(controllers), cgroup / "cpu",
                                 cgroup / "cpu,cpuacct", cgroup / "cpuacct,cpu"})) {
        WalkUp(*mount, path, ReadV1Dir, found, ignored);
      }
    }
  }
  return found;
}

CpuLimits ReadCpuLimits(const std::string& root, const Allocation& allocation) {
  CpuLimits limits;
  limits.cpuset = allocation.allowed_cpus;
  if (limits.cpuset.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) limits.cpuset.push_back(c);
      }
    }
  }
  limits.quota = ReadCgroupQuota(root, &limits.ignored);
  if (allocation.Explicit()) limits.allocated = allocation.ComputeCpus();
  return limits;
}

int QuotaThreads(double cpus) {
  if (!(cpus > 0)) return 1;
  return int(std::max(1.0, std::min(std::floor(cpus + 0.5), 65536.0)));
}

ThreadChoice ChooseThreads(const CpuLimits& limits, int requested, int stages) {
  ThreadChoice choice;
  choice.limits = limits;
  if (requested > 0) {
    choice.threads = requested;
    choice.requested = true;
    choice.reason = Threads(requested) + ": --threads " + std::to_string(requested);
    return choice;
  }
  std::vector<std::string> why;
  int cores = 0;
  auto bound = [&](int n, std::string what) {
    cores = cores == 0 ? n : std::min(cores, n);
    why.push_back(std::move(what) + " -> " + std::to_string(n));
  };
  if (!limits.cpuset.empty()) {
    bound(int(limits.cpuset.size()), "cpuset " + CpuRange(limits.cpuset));
  } else {
    int online = std::max(1, int(std::thread::hardware_concurrency()));
    bound(online, "online CPUs (no cpuset)");
  }
  if (limits.quota) {
    bound(QuotaThreads(limits.quota->cpus),
          "cgroup quota " + FormatCpus(limits.quota->cpus) + " CPU");
  }
  if (!limits.allocated.empty()) {
    bound(int(limits.allocated.size()), "allocated cores " + CpuRange(limits.allocated));
  }
  const int per_stage = std::max(1, cores / std::max(1, stages));
  if (stages > 1) {
    why.push_back(std::to_string(stages) + " stages share " + std::to_string(cores) + " -> " +
                  std::to_string(per_stage) + " each");
  }
  choice.threads = per_stage;
  choice.reason = Threads(per_stage) + ": ";
  for (size_t i = 0; i < why.size(); ++i) choice.reason += (i ? ", " : "") + why[i];
  return choice;
}

edgefd::Json ThreadChoiceJson(const ThreadChoice& choice) {
  const CpuLimits& l = choice.limits;
  edgefd::Json quota = nullptr;
  if (l.quota) quota = {{"cpus", RoundTo(l.quota->cpus, 3)}, {"file", l.quota->file}};
  return {{"threads", choice.threads},
          {"chosen_by", choice.requested ? "--threads" : "limits"},
          {"reason", choice.reason},
          {"cpuset", l.cpuset},
          {"cgroup_quota", std::move(quota)},
          {"allocated_cpus", l.allocated},
          {"ignored", l.ignored},
          {"wait_policy", WaitPolicy()}};
}

void DefaultToPassiveWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) {
    return;
  }
  // libgomp has read its environment before main runs (and the C library resets environ after
  // a .preinit_array hook could change it), so the new policy takes a fresh start of this same
  // program: a few milliseconds, once.
  setenv("OMP_WAIT_POLICY", "passive", 1);
  setenv(kDefaultedMarker, "1", 1);
  execv("/proc/self/exe", argv);
  g_exec_error = std::string("re-running /proc/self/exe with OMP_WAIT_POLICY=passive failed: ") +
                 std::strerror(errno);
  unsetenv("OMP_WAIT_POLICY");
  unsetenv(kDefaultedMarker);
}

std::string WaitPolicy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  if (std::getenv(kDefaultedMarker) != nullptr && policy != nullptr &&
      std::string_view(policy) == "passive") {
    return "passive (edgefd default)";
  }
  std::string out;
  for (const char* name : {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"}) {
    if (const char* v = std::getenv(name)) {
      out += (out.empty() ? "" : ", ") + std::string(name) + "=" + v;
    }
  }
  if (!out.empty()) return out + " (from the environment)";
  if (!g_exec_error.empty()) return "libgomp default (spins before sleeping): " + g_exec_error;
  return "libgomp default (spins before sleeping)";
}

}  // namespace edgefd::runtime
