#include "edgefd/runtime/devices.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "edgefd/runtime/metrics.h"

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
  std::vector<std::string> env = {"PATH=/bin", "EDGEFD_BIG_CPUS=0,999", "EDGEFD_LITTLE_CPUS=",
                                  "EDGEFD_MOVIDIUS_NCS_DEVICES=usb-1-1.2,usb-1-1.3",
                                  "EDGEFD_EDGETPU_DEVICES=apex_0"};
  std::vector<char*> ptrs;
  for (auto& e : env) ptrs.push_back(e.data());
  ptrs.push_back(nullptr);
  auto a = ReadAllocation(ptrs.data());
  ASSERT_TRUE(a.ok());
  // CPU 999 is not ours to use, so only 0 stays.
  EXPECT_EQ(a->big_cpus, (std::vector<int>{0}));
  EXPECT_EQ(a->ComputeCpus(), (std::vector<int>{0}));
  EXPECT_EQ(a->IoCpus(), (std::vector<int>{0})) << "no little cores: I/O shares compute cores";
  EXPECT_EQ(a->devices["MOVIDIUS_NCS"], (std::vector<std::string>{"usb-1-1.2", "usb-1-1.3"}));
  EXPECT_EQ(a->devices["EDGETPU"], (std::vector<std::string>{"apex_0"}));
  EXPECT_TRUE(a->devices.count("BIG_CPUS") == 0);
}

TEST(Allocation, FallsBackToTheCoresTheProcessMayUse) {
  char* env[] = {nullptr};
  auto a = ReadAllocation(env);
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->allowed_cpus.empty());
  EXPECT_EQ(a->ComputeCpus(), a->allowed_cpus);
  EXPECT_TRUE(PinThisThread(a->ComputeCpus()).ok());
}

TEST(Allocation, OpensAllocatedDeviceNodesAndSaysWhichAreMissing) {
  char tmpl[] = "/tmp/edgefd-dev-XXXXXX";
  std::string dev = mkdtemp(tmpl);
  std::ofstream(dev + "/apex_0") << "";
  Allocation a;
  a.devices["EDGETPU"] = {"apex_0", "apex_1"};
  auto opened = OpenAllocatedDevices(a, dev);
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_TRUE(opened[0].opened);
  EXPECT_EQ(opened[0].path, dev + "/apex_0");
  EXPECT_FALSE(opened[1].opened);
  EXPECT_FALSE(opened[1].error.empty());
  std::filesystem::remove_all(dev);
}

TEST(Metrics, ServesPrometheusTextOverHttp) {
  StageCounters c;
  c.frames = 42;
  c.drops = 3;
  c.compute_ns = 42 * 2000000;
  auto server = MetricsServer::Start(0, &c, 2);
  ASSERT_TRUE(server.ok()) << server.error().message;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(uint16_t((*server)->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), ssize_t(req.size()));
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
  close(fd);
  EXPECT_NE(resp.find("200 OK"), std::string::npos);
  EXPECT_NE(resp.find("edgefd_pipeline_frames_total{stage=\"2\"} 42"), std::string::npos) << resp;
  EXPECT_NE(resp.find("edgefd_pipeline_drops_total{stage=\"2\"} 3"), std::string::npos);
  EXPECT_NE(resp.find("edgefd_pipeline_stage_ms{stage=\"2\"} 2.0000"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::runtime
