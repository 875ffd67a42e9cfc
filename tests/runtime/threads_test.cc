// The default thread count follows what the process may really use (cpuset, cgroup CPU quota,
// allocated cores), read from fixture trees of /proc/self/cgroup and /sys/fs/cgroup, from a
// real cgroup where this machine lets the test make one, and reported by `run --json`.
#include "edgefd/runtime/threads.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "edgefd/common/json.h"
#include "edgefd/testing/cgroup.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// A fixture root: files written at paths relative to it, directories made as needed.
class Root {
 public:
  Root& Put(const std::string& path, const std::string& text) {
    std::filesystem::create_directories((dir_.path() / path).parent_path());
    edgefd::testing::WriteFile(dir_.path() / path, text);
    return *this;
  }
  std::string path() const { return dir_.path().string(); }
  std::optional<CgroupQuota> Quota() {
    ignored.clear();
    return ReadCgroupQuota(path(), &ignored);
  }
  std::vector<std::string> ignored;

 private:
  edgefd::testing::TempDir dir_;
};

// A cgroup v2 host: the unified hierarchy mounted at /sys/fs/cgroup.
Root& V2(Root& r, const std::string& cgroup) {
  return r.Put("proc/self/cgroup", "0::" + cgroup + "\n")
      .Put("sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
}

// A cgroup v1 directory's CFS quota and period.
Root& Cfs(Root& r, const std::string& dir, const std::string& quota, const std::string& period) {
  return r.Put(dir + "/cpu.cfs_quota_us", quota).Put(dir + "/cpu.cfs_period_us", period);
}

// The tree's quota is `cpus`, read from a file whose path holds `file`, with nothing ignored.
void ExpectQuota(Root& r, double cpus, const std::string& file) {
  auto q = r.Quota();
  ASSERT_TRUE(q.has_value());
  EXPECT_DOUBLE_EQ(q->cpus, cpus);
  EXPECT_THAT(q->file, HasSubstr(file));
  EXPECT_THAT(r.ignored, IsEmpty());
}

void ExpectNoQuota(Root& r) {
  EXPECT_FALSE(r.Quota().has_value());
  EXPECT_THAT(r.ignored, IsEmpty());
}

TEST(CgroupQuota, V2TightestAlongTheNestedPathWins) {
  Root r;
  V2(r, "/kubepods/pod1/ctr")
      .Put("sys/fs/cgroup/kubepods/cpu.max", "max 100000\n")
      .Put("sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n")
      .Put("sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "300000 100000\n");
  ExpectQuota(r, 2.0, "kubepods/pod1/cpu.max");
}

TEST(CgroupQuota, V2MaxIsNoLimit) {
  Root r;
  V2(r, "/a/b").Put("sys/fs/cgroup/a/cpu.max", "max 100000\n");
  ExpectNoQuota(r.Put("sys/fs/cgroup/a/b/cpu.max", "max 50000\n"));
}

TEST(CgroupQuota, V2InAContainerReadsTheMountedCgroup) {
  // With its own cgroup mounted at /sys/fs/cgroup, a container still sees the host's path.
  Root r;
  V2(r, "/kubepods/burstable/pod9/abc").Put("sys/fs/cgroup/cpu.max", "50000 100000\n");
  ExpectQuota(r, 0.5, "sys/fs/cgroup/cpu.max");
}

TEST(CgroupQuota, HybridHostReadsV2UnderUnified) {
  Root r;
  r.Put("proc/self/cgroup", "0::/svc\n").Put("sys/fs/cgroup/unified/cgroup.controllers", "cpu\n");
  ExpectQuota(r.Put("sys/fs/cgroup/unified/svc/cpu.max", "100000 100000\n"), 1.0, "unified/svc");
}

TEST(CgroupQuota, V1QuotaOverPeriod) {
  Root r;
  r.Put("proc/self/cgroup", "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
  Cfs(r, "sys/fs/cgroup/cpu,cpuacct", "-1\n", "100000\n");
  Cfs(r, "sys/fs/cgroup/cpu,cpuacct/docker/abc", "150000\n", "100000\n");
  ExpectQuota(r, 1.5, "docker/abc/cpu.cfs_quota_us");
}

TEST(CgroupQuota, V1MinusOneIsNoLimit) {
  Root r;
  r.Put("proc/self/cgroup", "2:cpu:/x\n");
  ExpectNoQuota(Cfs(r, "sys/fs/cgroup/cpu/x", "-1\n", "100000\n"));
}

TEST(CgroupQuota, RootCgroupIsReadOnce) {
  Root r;
  r.Put("proc/self/cgroup", "1:cpu:/\n");
  Cfs(r, "sys/fs/cgroup/cpu", "x\n", "100000\n");
  EXPECT_FALSE(r.Quota().has_value());
  EXPECT_EQ(r.ignored.size(), 1u) << ::testing::PrintToString(r.ignored);
}

TEST(CgroupQuota, NoCgroupFilesIsNoLimit) {
  Root r;
  ExpectNoQuota(r);
  ExpectNoQuota(r.Put("proc/self/cgroup", "0::/\n"));
}

TEST(CgroupQuota, GarbageIsLoggedAndIgnoredWhileGoodAncestorsCount) {
  for (const std::string& garbage : std::vector<std::string>{
           "banana", "0 100000", "-5 100000", "100000 0", "100000", "100000 -1", "",
           "99999999999999999999 100000", "1e5 100000", std::string(10000, '7') + " 100000"}) {
    Root r;
    V2(r, "/a/b")
        .Put("sys/fs/cgroup/a/cpu.max", "400000 100000\n")
        .Put("sys/fs/cgroup/a/b/cpu.max", garbage);
    auto q = r.Quota();
    ASSERT_TRUE(q.has_value()) << garbage;
    EXPECT_DOUBLE_EQ(q->cpus, 4.0) << garbage;
    ASSERT_EQ(r.ignored.size(), 1u) << garbage;
    EXPECT_THAT(r.ignored[0], HasSubstr("a/b/cpu.max")) << garbage;
  }
}

TEST(CgroupQuota, GarbageV1AndProcLinesAreIgnored) {
  Root r;
  r.Put("proc/self/cgroup", "nonsense\n3:cpu:/../../etc\n2:cpu:relative\n1:cpu:/ok\n");
  Cfs(r, "sys/fs/cgroup/cpu/ok", "fifty\n", "100000\n");
  Cfs(r, "sys/fs/cgroup/cpu", "200000\n", "0\n");
  EXPECT_FALSE(r.Quota().has_value());
  // Three bad lines of /proc/self/cgroup, then both bad files on the good path.
  EXPECT_EQ(r.ignored.size(), 5u) << ::testing::PrintToString(r.ignored);
}

TEST(QuotaThreads, RoundsToTheNearestCpuAtLeastOne) {
  EXPECT_EQ(QuotaThreads(0.1), 1);
  EXPECT_EQ(QuotaThreads(1.0), 1);
  EXPECT_EQ(QuotaThreads(1.4), 1);
  EXPECT_EQ(QuotaThreads(1.5), 2);
  EXPECT_EQ(QuotaThreads(3.99), 4);
  EXPECT_EQ(QuotaThreads(0), 1);
}

CpuLimits Limits(std::vector<int> cpuset, std::optional<double> quota, std::vector<int> allocated) {
  CpuLimits l;
  l.cpuset = std::move(cpuset);
  if (quota) l.quota = CgroupQuota{*quota, "/sys/fs/cgroup/cpu.max"};
  l.allocated = std::move(allocated);
  return l;
}

TEST(ChooseThreads, QuotaBelowTheCpusetWins) {
  ThreadChoice c = ChooseThreads(Limits({0, 1}, 1.0, {}), 0, 1);
  EXPECT_EQ(c.threads, 1);
  EXPECT_FALSE(c.requested);
  EXPECT_EQ(c.reason, "1 thread: cpuset 0-1 -> 2, cgroup quota 1.0 CPU -> 1");
}

TEST(ChooseThreads, FractionalQuotaRoundsToNearest) {
  ThreadChoice c = ChooseThreads(Limits({0, 1, 2, 3}, 1.5, {}), 0, 1);
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.reason, "2 threads: cpuset 0-3 -> 4, cgroup quota 1.5 CPU -> 2");
  EXPECT_THAT(ChooseThreads(Limits({0, 1}, 0.25, {}), 0, 1).reason, HasSubstr("0.25 CPU -> 1"));
  EXPECT_EQ(ChooseThreads(Limits({0, 1, 2, 3}, 2.4, {}), 0, 1).threads, 2);
}

TEST(ChooseThreads, CpusetSmallerThanQuotaWins) {
  ThreadChoice c = ChooseThreads(Limits({3}, 4.0, {}), 0, 1);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(c.reason, "1 thread: cpuset 3 -> 1, cgroup quota 4.0 CPU -> 4");
}

TEST(ChooseThreads, AllocatedCoresSmallerThanBothWin) {
  ThreadChoice c = ChooseThreads(Limits({0, 1, 2, 3, 4, 5, 6, 7}, 4.0, {4, 5}), 0, 1);
  EXPECT_EQ(c.threads, 2);
  EXPECT_THAT(c.reason, HasSubstr("cpuset 0-7 -> 8"));
  EXPECT_THAT(c.reason, HasSubstr("allocated cores 4-5 -> 2"));
}

TEST(ChooseThreads, StagesShareTheCores) {
  ThreadChoice c = ChooseThreads(Limits({0, 1, 2, 3}, std::nullopt, {}), 0, 2);
  EXPECT_EQ(c.threads, 2);
  EXPECT_THAT(c.reason, HasSubstr("2 stages share 4 -> 2 each"));
  EXPECT_EQ(ChooseThreads(Limits({0, 1}, std::nullopt, {}), 0, 4).threads, 1);
}

TEST(ChooseThreads, ExplicitThreadsWin) {
  ThreadChoice c = ChooseThreads(Limits({0, 1}, 1.0, {1}), 3, 1);
  EXPECT_EQ(c.threads, 3);
  EXPECT_TRUE(c.requested);
  EXPECT_EQ(c.reason, "3 threads: --threads 3");
}

// `edgefd-pipeline run --json ARGS`'s report, parsed; fails the test when it did not run.
Json RunReportJson(const std::string& args, const std::vector<std::string>& env = {}) {
  auto r = edgefd::testing::RunCommand(
      edgefd::testing::CommandLine(
          edgefd::testing::PipelineBin(),
          "run --model conv --width 64 --height 64 --frames 3 --json " + args),
      env);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto json = ParseJson(r.out, "run --json");
  EXPECT_TRUE(json.ok()) << r.out << r.err;
  return json.ok() ? *json : Json::object();
}

// The report's "threads" of a run in cgroup v2 pod "/pod" whose cpu.max holds `cpu_max`.
Json ThreadsUnder(const std::string& cpu_max, const std::string& args = "") {
  Root r;
  V2(r, "/pod").Put("sys/fs/cgroup/pod/cpu.max", cpu_max);
  return RunReportJson(args + " --root " + r.path())["threads"];
}

TEST(RunThreads, ReportSaysHowTheCountWasChosen) {
  Json threads = ThreadsUnder("100000 100000\n");
  EXPECT_EQ(threads["threads"], 1);
  EXPECT_EQ(threads["chosen_by"], "limits");
  EXPECT_THAT(threads["reason"].get<std::string>(), HasSubstr("cgroup quota 1.0 CPU -> 1"));
  EXPECT_DOUBLE_EQ(threads["cgroup_quota"]["cpus"].get<double>(), 1.0);
  EXPECT_THAT(threads["cgroup_quota"]["file"].get<std::string>(), HasSubstr("pod/cpu.max"));
  EXPECT_THAT(threads["cpuset"], Not(IsEmpty()));
}

TEST(RunThreads, ExplicitThreadsWinOverTheQuota) {
  Json threads = ThreadsUnder("100000 100000\n", "--threads 2");
  EXPECT_EQ(threads["threads"], 2);
  EXPECT_EQ(threads["chosen_by"], "--threads");
}

TEST(RunThreads, GarbageCgroupFilesDoNotStopARun) {
  Json threads = ThreadsUnder("\x01\xff garbage");
  EXPECT_EQ(threads["cgroup_quota"], nullptr);
  ASSERT_EQ(threads["ignored"].size(), 1u);
  EXPECT_THAT(threads["ignored"][0].get<std::string>(), HasSubstr("pod/cpu.max"));
}

TEST(RunThreads, IdleThreadsSleepUnlessTheUserChoseAPolicy) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) {
    GTEST_SKIP() << "this environment sets OMP_WAIT_POLICY or GOMP_SPINCOUNT already";
  }
  EXPECT_EQ(RunReportJson("")["threads"]["wait_policy"], "passive (edgefd default)");
  EXPECT_EQ(RunReportJson("", {"OMP_WAIT_POLICY=active"})["threads"]["wait_policy"],
            "OMP_WAIT_POLICY=active (from the environment)");
  EXPECT_EQ(RunReportJson("", {"GOMP_SPINCOUNT=300000"})["threads"]["wait_policy"],
            "GOMP_SPINCOUNT=300000 (from the environment)");
}

TEST(RunThreads, ARealOneCpuQuotaPicksOneThread) {
  const CpuLimits here = ReadCpuLimits("/", Allocation{});
  if (here.cpuset.size() < 2) GTEST_SKIP() << "one CPU: one thread whatever the quota";
  std::string why;
  auto cgroup = edgefd::testing::QuotaCgroup::Make(100000, 100000, &why);
  if (!cgroup) GTEST_SKIP() << "cannot make a cgroup with a CPU quota here: " << why;
  auto r = edgefd::testing::RunCommand(cgroup->Wrap(
      edgefd::testing::CommandLine(edgefd::testing::PipelineBin(),
                                   "run --model conv --width 64 --height 64 --frames 3 --json")));
  ASSERT_EQ(r.exit_code, 0) << cgroup->Describe() << "\n" << r.err;
  auto json = ParseJson(r.out, "run --json");
  ASSERT_TRUE(json.ok()) << r.out;
  const Json& threads = (*json)["threads"];
  EXPECT_EQ(threads["threads"], 1) << cgroup->Describe() << ": " << threads.dump();
  EXPECT_DOUBLE_EQ(threads["cgroup_quota"]["cpus"].get<double>(), 1.0) << threads.dump();
}

}  // namespace
}  // namespace edgefd::runtime
