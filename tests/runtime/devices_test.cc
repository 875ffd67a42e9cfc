#include "edgefd/runtime/devices.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>

#include "edgefd/runtime/metrics.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/http.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

TEST(CpuList, ParsesListsAndRanges) {
  auto c = ParseCpuList("EDGEFD_BIG_CPUS", "4,5,0-2");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, (std::vector<int>{0, 1, 2, 4, 5}));
  EXPECT_TRUE(ParseCpuList("X", "")->empty());
  auto bad = ParseCpuList("EDGEFD_BIG_CPUS", "4,x");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("EDGEFD_BIG_CPUS=4,x"), std::string::npos);
  EXPECT_FALSE(ParseCpuList("X", "3-1").ok());
}

TEST(Allocation, ReadsTheDevicePluginEnvironment) {
  std::string allowed = "0";  // every process may run on CPU 0 here
  std::vector<std::string> env = {"PATH=/bin",
                                  "EDGEFD_BIG_CPUS=0,999",
                                  "EDGEFD_LITTLE_CPUS=",
                                  "EDGEFD_MOVIDIUS_NCS_DEVICES=1-1.2,1-1.3",
                                  "EDGEFD_MOVIDIUS_NCS_DEVNODES=/dev/bus/usb/001/004,"
                                  "/dev/bus/usb/001/005",
                                  "EDGEFD_EDGETPU_DEVICES=0000:01:00.0",
                                  "EDGEFD_EDGETPU_DEVNODES="};
  std::vector<char*> ptrs;
  for (auto& e : env) ptrs.push_back(e.data());
  ptrs.push_back(nullptr);
  auto a = ReadAllocation(ptrs.data());
  ASSERT_TRUE(a.ok());
  // CPU 999 is not ours to use, so only 0 stays.
  EXPECT_EQ(a->big_cpus, (std::vector<int>{0}));
  EXPECT_EQ(a->ComputeCpus(), (std::vector<int>{0}));
  EXPECT_EQ(a->IoCpus(), (std::vector<int>{0})) << "no little cores: I/O shares compute cores";
  EXPECT_EQ(a->devices["MOVIDIUS_NCS"], (std::vector<std::string>{"1-1.2", "1-1.3"}));
  EXPECT_EQ(a->devices["EDGETPU"], (std::vector<std::string>{"0000:01:00.0"}));
  EXPECT_TRUE(a->devices.count("BIG_CPUS") == 0);
  EXPECT_EQ(a->devices.size(), 2u) << "DEVNODES variables are not resources of their own";
  EXPECT_EQ(a->devnodes["MOVIDIUS_NCS"],
            (std::vector<std::string>{"/dev/bus/usb/001/004", "/dev/bus/usb/001/005"}));
  ASSERT_TRUE(a->devnodes.count("EDGETPU"));
  EXPECT_TRUE(a->devnodes["EDGETPU"].empty()) << "set but empty: the plugin allocated no node";
}

TEST(Allocation, FallsBackToTheCoresTheProcessMayUse) {
  char* env[] = {nullptr};
  auto a = ReadAllocation(env);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->allowed_cpus.empty());
  EXPECT_EQ(a->ComputeCpus(), a->allowed_cpus);
  EXPECT_TRUE(PinThisThread(a->ComputeCpus()).ok());
}

// A temporary directory stands in for the container's /dev.
using DevDir = testing::TempDir;

ino_t Inode(int fd) {
  struct stat st {};
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

ino_t Inode(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

TEST(OpenAllocatedDevices, OpensTheNodesTheDevicePluginNamedAndReportsTheMissingOne) {
  DevDir dev;
  ASSERT_EQ(mkfifo((dev / "apex_0").c_str(), 0600), 0);  // nobody ever writes to it
  std::ofstream(dev / "apex_1") << "";
  Allocation a;
  a.devices["EDGETPU"] = {"0000:01:00.0", "0000:02:00.0", "0000:03:00.0"};
  a.devnodes["EDGETPU"] = {dev / "apex_0", dev / "apex_1", dev / "apex_2"};
  std::vector<OpenedDevice> opened = OpenAllocatedDevices(a);
  ASSERT_EQ(opened.size(), 3u);
  for (size_t i = 0; i < 2; ++i) {
    const OpenedDevice& d = opened[i];
    EXPECT_EQ(d.resource, "EDGETPU");
    EXPECT_EQ(d.id, a.devices["EDGETPU"][i]) << "one node per ID: they pair up in order";
    EXPECT_EQ(d.path, a.devnodes["EDGETPU"][i]);
    ASSERT_TRUE(d.opened) << d.error;
    EXPECT_FALSE(d.read_only);
    EXPECT_EQ(d.error_number, 0);
    // The descriptor really is that node, read-write and not leaked into child processes.
    ASSERT_TRUE(d.fd.valid());
    EXPECT_EQ(Inode(d.fd.get()), Inode(d.path));
    EXPECT_EQ(fcntl(d.fd.get(), F_GETFL) & O_ACCMODE, O_RDWR);
    EXPECT_TRUE(fcntl(d.fd.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_EQ(d.Describe(), "opened " + d.path + " (rw)");
  }
  const OpenedDevice& missing = opened[2];
  EXPECT_EQ(missing.id, "0000:03:00.0");
  EXPECT_FALSE(missing.opened);
  EXPECT_FALSE(missing.fd.valid());
  EXPECT_EQ(missing.error_number, ENOENT);
  EXPECT_NE(missing.error.find(dev / "apex_2"), std::string::npos) << missing.error;
  EXPECT_NE(missing.Describe().find("No such file or directory"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dev / "apex_2")) << "opening must never create a node";

  // Held only as long as the report lives.
  int fd = opened[0].fd.get();
  opened.clear();
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);
}

TEST(OpenAllocatedDevices, FallsBackToReadOnlyWhenWritingIsRefused) {
  DevDir dev;
  std::string node = dev / "hailo0";
  std::ofstream(node) << "";
  ASSERT_EQ(chmod(node.c_str(), 0444), 0);
  if (geteuid() == 0) {
    // Root ignores file modes; a read-only sysfs attribute refuses writers even to root.
    node = "/sys/devices/system/cpu/online";
    if (access(node.c_str(), R_OK) != 0) GTEST_SKIP() << "running as root without " << node;
  }
  Allocation a;
  a.devices["HAILO"] = {"0000:01:00.0"};
  a.devnodes["HAILO"] = {node};
  std::vector<OpenedDevice> opened = OpenAllocatedDevices(a);
  ASSERT_EQ(opened.size(), 1u);
  ASSERT_TRUE(opened[0].opened) << opened[0].error;
  EXPECT_TRUE(opened[0].read_only);
  EXPECT_EQ(fcntl(opened[0].fd.get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_EQ(opened[0].Describe(), "opened " + node + " (read-only)");
}

TEST(OpenAllocatedDevices, NeverTakesAnIdForAPath) {
  Allocation a;
  // Without DEVNODES there is nothing to open, even when an ID happens to look like a node.
  a.devices["MOVIDIUS_NCS"] = {"1-1.2"};
  a.devices["ODD"] = {"/dev/null"};
  // Set but empty: the plugin allocated no node for this accelerator.
  a.devices["RK_NPU"] = {"/soc/npu@fdab0000"};
  a.devnodes["RK_NPU"] = {};
  std::vector<OpenedDevice> opened = OpenAllocatedDevices(a);
  ASSERT_EQ(opened.size(), 3u);
  for (const OpenedDevice& d : opened) {
    EXPECT_FALSE(d.opened) << d.id;
    EXPECT_TRUE(d.path.empty()) << d.id;
    EXPECT_FALSE(d.fd.valid());
  }
  EXPECT_EQ(opened[0].id, "1-1.2");
  EXPECT_NE(opened[0].error.find("EDGEFD_MOVIDIUS_NCS_DEVNODES is not set"), std::string::npos)
      << opened[0].error;
  EXPECT_EQ(opened[1].id, "/dev/null");
  EXPECT_NE(opened[2].error.find("EDGEFD_RK_NPU_DEVNODES is empty"), std::string::npos)
      << opened[2].error;
}

TEST(OpenAllocatedDevices, NodesThatDoNotPairWithIdsCarryEveryIdAndBadPathsAreNamed) {
  DevDir dev;
  std::ofstream(dev / "usb-004") << "";
  Allocation a;
  // Two sticks, three nodes (one stick has a second node): no pairing can be inferred.
  a.devices["MOVIDIUS_NCS"] = {"1-1.2", "1-1.3"};
  a.devnodes["MOVIDIUS_NCS"] = {dev / "usb-004", "dev/relative", "/dev/null"};
  std::vector<OpenedDevice> opened = OpenAllocatedDevices(a);
  ASSERT_EQ(opened.size(), 3u);
  for (const OpenedDevice& d : opened) EXPECT_EQ(d.id, "1-1.2,1-1.3");
  EXPECT_TRUE(opened[0].opened) << opened[0].error;
  EXPECT_FALSE(opened[1].opened);
  EXPECT_EQ(opened[1].error_number, EINVAL);
  EXPECT_NE(opened[1].error.find("'dev/relative'"), std::string::npos) << opened[1].error;
  EXPECT_TRUE(opened[2].opened) << "a real character device: " << opened[2].error;
}

// Sets an environment variable for one scope (children started meanwhile inherit it).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(PipelineCli, RunOpensAllocatedNodesWarnsAboutMissingOnesAndComputesOnTheCpu) {
  DevDir dev;
  ASSERT_EQ(mkfifo((dev / "apex_0").c_str(), 0600), 0);
  ScopedEnv ids("EDGEFD_EDGETPU_DEVICES", "0000:01:00.0,0000:02:00.0");
  ScopedEnv nodes("EDGEFD_EDGETPU_DEVNODES", dev / "apex_0" + "," + dev / "apex_1");
  int st = 0;
  std::string out =
      testing::RunCli("run --model conv --width 96 --height 64 --stages 1 --frames 3 --json", &st);
  ASSERT_EQ(st, 0) << "a missing node is a warning, not a failure: " << out;
  EXPECT_NE(out.find("{\"resource\":\"EDGETPU\",\"id\":\"0000:01:00.0\",\"path\":\"" +
                     dev / "apex_0" + "\",\"opened\":true,\"mode\":\"rw\",\"errno\":0,"),
            std::string::npos)
      << out;
  EXPECT_NE(
      out.find("{\"resource\":\"EDGETPU\",\"id\":\"0000:02:00.0\",\"path\":\"" + dev / "apex_1" +
               "\",\"opened\":false,\"mode\":\"\",\"errno\":" + std::to_string(ENOENT)),
      std::string::npos)
      << out;
  // The warning on stderr names the node that is missing.
  EXPECT_NE(out.find("edgefd-pipeline: warning: run: device EDGETPU 0000:02:00.0 not opened: " +
                     dev / "apex_1" + ": No such file or directory"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\"backend\":\"cpu\""), std::string::npos);
  EXPECT_EQ(out.find("\"backend\":\"edgetpu"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dev / "apex_1"));
}

TEST(Metrics, ServesPrometheusTextOverHttp) {
  StageCounters c;
  c.frames = 42;
  c.drops = 3;
  c.compute_ns = 42 * 2000000;
  auto server = StartHealthEndpoint("127.0.0.1:0", StageHealth(c, 2), "--metrics-addr");
  ASSERT_TRUE(server.ok()) << server.error().message;
  std::string resp = testing::HttpGet(uint16_t((*server)->port()), "/metrics");
  EXPECT_NE(resp.find("200 OK"), std::string::npos);
  EXPECT_NE(resp.find("edgefd_pipeline_frames_total{stage=\"2\"} 42"), std::string::npos) << resp;
  EXPECT_NE(resp.find("edgefd_pipeline_drops_total{stage=\"2\"} 3"), std::string::npos);
  EXPECT_NE(resp.find("edgefd_pipeline_stage_ms{stage=\"2\"} 2\n"), std::string::npos) << resp;
}

}  // namespace
}  // namespace edgefd::runtime
