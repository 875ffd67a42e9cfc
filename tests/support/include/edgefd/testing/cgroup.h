#pragma once

// A cgroup with a CFS CPU quota, made for a test or a bench that runs a program under a CPU
// limit, as `resources.limits.cpu` does to a container. Only root may make one, and only where
// the cpu controller is mounted writable: elsewhere Make says why not.

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace edgefd::testing {

class QuotaCgroup {
 public:
  /// A fresh cgroup granting `quota_us` of CPU time every `period_us`: under cgroup v2 when its
  /// cpu controller is there (cpu.max), else under v1's cpu hierarchy (cpu.cfs_quota_us). Null,
  /// with the reason in `*why`, when this machine does not allow it.
  static std::unique_ptr<QuotaCgroup> Make(long quota_us, long period_us, std::string* why) {
    namespace fs = std::filesystem;
    const std::string name =
        "edgefd-quota-" + std::to_string(getpid()) + "-" + std::to_string(Counter()++);
    const std::string limit = std::to_string(quota_us) + " " + std::to_string(period_us);
    std::error_code ec;
    for (const fs::path& mount : {fs::path("/sys/fs/cgroup"), fs::path("/sys/fs/cgroup/unified")}) {
      if (Read(mount / "cgroup.controllers").find("cpu") == std::string::npos) continue;
      // The root cgroup may hold processes and still hand the controller to its children.
      if (!Write(mount / "cgroup.subtree_control", "+cpu")) continue;
      auto g = std::unique_ptr<QuotaCgroup>(new QuotaCgroup(mount / name, "v2"));
      if (fs::create_directory(g->dir_, ec) && Write(g->dir_ / "cpu.max", limit)) {
        g->describe_ = "cgroup v2 " + g->dir_.string() + ", cpu.max " + limit;
        return g;
      }
    }
    for (const char* hierarchy : {"cpu", "cpu,cpuacct", "cpuacct,cpu"}) {
      const fs::path mount = fs::path("/sys/fs/cgroup") / hierarchy;
      if (!fs::exists(mount / "cpu.cfs_quota_us", ec)) continue;
      auto g = std::unique_ptr<QuotaCgroup>(new QuotaCgroup(mount / name, "v1"));
      if (fs::create_directory(g->dir_, ec) &&
          Write(g->dir_ / "cpu.cfs_period_us", std::to_string(period_us)) &&
          Write(g->dir_ / "cpu.cfs_quota_us", std::to_string(quota_us))) {
        g->describe_ = "cgroup v1 " + g->dir_.string() + ", cpu.cfs_quota_us " + limit;
        return g;
      }
    }
    *why = getuid() != 0 ? "not root, so no cgroup can be made"
                         : "no writable cpu controller under /sys/fs/cgroup (v2 or v1)";
    return nullptr;
  }

  /// Removes the cgroup once the processes moved into it have exited.
  ~QuotaCgroup() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    // A reaped child can linger in cgroup.procs for a moment; rmdir fails with EBUSY till then.
    while (rmdir(dir_.c_str()) != 0 && errno == EBUSY &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  }
  QuotaCgroup(const QuotaCgroup&) = delete;
  QuotaCgroup& operator=(const QuotaCgroup&) = delete;

  /// `argv` run inside the cgroup: a shell moves itself there, then becomes the program.
  std::vector<std::string> Wrap(const std::vector<std::string>& argv) const {
    std::vector<std::string> out = {"/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"",
                                    (dir_ / "cgroup.procs").string()};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }
  /// "cgroup v1 /sys/fs/cgroup/cpu/edgefd-quota-12-0, cpu.cfs_quota_us 100000 100000".
  const std::string& Describe() const { return describe_; }
  const std::string& version() const { return version_; }

 private:
  QuotaCgroup(std::filesystem::path dir, std::string version)
      : dir_(std::move(dir)), version_(std::move(version)) {}

  static int& Counter() {
    static int n = 0;
    return n;
  }
  static std::string Read(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  static bool Write(const std::filesystem::path& p, const std::string& text) {
    std::ofstream out(p);
    out << text;
    out.flush();
    return bool(out);
  }

  std::filesystem::path dir_;
  std::string version_;
  std::string describe_;
};

}  // namespace edgefd::testing
