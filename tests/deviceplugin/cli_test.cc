// edgefd-deviceplugin as a user runs it: the real binary as a subprocess.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <future>
#include <vector>

#include "fake_kubelet.h"
#include "test_util.h"

namespace edgefd::deviceplugin {
namespace {

namespace fs = std::filesystem;
using testing::FakeKubelet;
using ::testing::HasSubstr;
using testing::TempDir;

const std::string kBin = EDGEFD_DEVICEPLUGIN_BIN;
const std::string kInventory = std::string(EDGEFD_TESTDATA_DIR) + "/deviceplugin/rk3399-ncs.yaml";

struct RunResult {
  int code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunBinary(const std::string& args) {
  RunResult r;
  FILE* p = ::popen((kBin + " " + args + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf;
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) r.output.append(buf.data(), n);
  int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(DevicePluginCli, HelpDescribesTheFlags) {
  RunResult r = RunBinary("--help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag : {"--kubelet-dir", "--root", "--metrics-addr", "--rescan",
                           "/var/lib/kubelet/device-plugins"}) {
    EXPECT_THAT(r.output, HasSubstr(flag));
  }
}

TEST(DevicePluginCli, BadUsageExitsTwoNamingTheInput) {
  RunResult r = RunBinary("--frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--frobnicate"));
  r = RunBinary("--rescan soon");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("soon"));
  r = RunBinary("--inventory /nonexistent/inv.yaml --list");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/inv.yaml"));
}

TEST(DevicePluginCli, MissingKubeletDirIsARuntimeFailureNamingIt) {
  RunResult r = RunBinary("--inventory " + kInventory +
                          " --kubelet-dir /nonexistent/plugins --metrics-addr none");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.output, HasSubstr("/nonexistent/plugins"));
}

TEST(DevicePluginCli, ListPrintsResourcesAndEnvironment) {
  RunResult r = RunBinary("--inventory " + kInventory + " --list");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/little-cpu (EDGEFD_LITTLE_CPUS)"));
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/movidius-ncs (EDGEFD_MOVIDIUS_NCS_DEVICES, "
                                  "EDGEFD_MOVIDIUS_NCS_DEVNODES)"));
  EXPECT_THAT(r.output, HasSubstr("1-1.2 Healthy numa=0"));
}

// Starts the real binary with `args` against `dir`; returns its pid.
pid_t Spawn(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(),
              {kBin, "--kubelet-dir", dir.string(), "--metrics-addr", "none", "--rescan", "0"});
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(kBin.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

int StopAndWait(pid_t pid) {
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(DevicePluginCli, RealDiscoveryOfAnRk3588ServesItsCoreClasses) {
  // RK3588: four A55 (cluster 0), big A76 pairs in clusters 1 (cpu4-5) and 2 (cpu6-7).
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  pid_t pid = Spawn(dir.path(), {"--root", std::string(EDGEFD_TESTDATA_DIR) + "/cpu/rk3588"});
  ASSERT_GT(pid, 0);
  for (const char* r : {"edgefd.io/big-cpu", "edgefd.io/little-cpu"}) {
    ASSERT_TRUE(kubelet.WaitFor(r, [](const auto& ep) { return !ep.lists.empty(); })) << r;
  }
  EXPECT_EQ(kubelet.Get("edgefd.io/big-cpu")->lists.back().devices_size(), 4);
  EXPECT_EQ(kubelet.Get("edgefd.io/little-cpu")->lists.back().devices_size(), 4);
  auto stub = kubelet.Dial("edgefd.io/big-cpu");
  // The kubelet has cpu5, cpu6, cpu7 free and wants two: the plugin prefers one cluster.
  v1beta1::PreferredAllocationRequest preq;
  auto* c = preq.add_container_requests();
  for (const char* id : {"cpu5", "cpu6", "cpu7"}) c->add_available_deviceids(id);
  c->set_allocation_size(2);
  v1beta1::PreferredAllocationResponse presp;
  grpc::ClientContext pctx;
  ASSERT_TRUE(stub->GetPreferredAllocation(&pctx, preq, &presp).ok());
  ASSERT_EQ(presp.container_responses(0).deviceids_size(), 2);
  EXPECT_EQ(presp.container_responses(0).deviceids(0), "cpu6");
  EXPECT_EQ(presp.container_responses(0).deviceids(1), "cpu7");
  v1beta1::AllocateRequest req;
  auto* container = req.add_container_requests();
  for (const auto& id : presp.container_responses(0).deviceids()) container->add_devices_ids(id);
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.container_responses(0).envs().at("EDGEFD_BIG_CPUS"), "6,7");
  EXPECT_EQ(StopAndWait(pid), 0);
}

// One HTTP GET to 127.0.0.1:port; the whole response.
std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
      out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

TEST(DevicePluginCli, ServesMetricsAndProbesOverHttp) {
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  // Its log (stderr) says which port it bound; read it through a pipe, with a deadline.
  int err[2];
  ASSERT_EQ(::pipe2(err, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::execl(kBin.c_str(), kBin.c_str(), "--kubelet-dir", dir.path().c_str(), "--inventory",
            kInventory.c_str(), "--metrics-addr", "127.0.0.1:0", nullptr);
    ::_exit(127);
  }
  ::close(err[1]);
  std::string log;
  int port = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (port == 0 && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{err[0], POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    char buf[1024];
    ssize_t n = ::read(err[0], buf, sizeof buf);
    if (n <= 0) break;
    log.append(buf, static_cast<size_t>(n));
    if (auto at = log.find("(port ");
        at != std::string::npos && log.find(')', at) != std::string::npos) {
      port = std::atoi(log.c_str() + at + 6);
    }
  }
  // The pipe stays open until it exits: closing it would kill its next log line (SIGPIPE).
  struct CloseAtEnd {
    int fd;
    ~CloseAtEnd() { ::close(fd); }
  } close_at_end{err[0]};
  ASSERT_GT(port, 0) << log;
  ASSERT_TRUE(
      kubelet.WaitFor("edgefd.io/little-cpu", [](const auto& ep) { return !ep.lists.empty(); }));
  std::string metrics = HttpGet(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_deviceplugin_devices{resource=\"edgefd.io/little-cpu\","
                                 "health=\"Healthy\"} 4"));
  EXPECT_THAT(metrics, HasSubstr("edgefd_deviceplugin_registrations_total{resource=\"edgefd.io/"
                                 "movidius-ncs\",result=\"ok\"}"));
  EXPECT_THAT(HttpGet(port, "/healthz"), HasSubstr("HTTP/1.1 200 OK"));
  std::string ready = HttpGet(port, "/readyz");
  EXPECT_TRUE(ready.find("HTTP/1.1 200") == 0 || ready.find("HTTP/1.1 503") == 0) << ready;
  EXPECT_THAT(HttpGet(port, "/nope"), HasSubstr("HTTP/1.1 404"));
  EXPECT_EQ(StopAndWait(pid), 0);
}

TEST(DevicePluginCli, SigtermStopsCleanlyAndRemovesItsSockets) {
  TempDir dir;
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::execl(kBin.c_str(), kBin.c_str(), "--kubelet-dir", dir.path().c_str(), "--inventory",
            kInventory.c_str(), "--metrics-addr", "none", "--rescan", "0", nullptr);
    ::_exit(127);
  }
  auto exited = std::async(std::launch::async, [pid] {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  });
  for (const char* r : {"edgefd.io/big-cpu", "edgefd.io/little-cpu", "edgefd.io/movidius-ncs"}) {
    ASSERT_TRUE(kubelet.WaitFor(r, [](const auto& ep) { return !ep.lists.empty(); })) << r;
  }
  ASSERT_TRUE(fs::exists(dir.path() / "edgefd-little-cpu.sock"));
  ::kill(pid, SIGTERM);
  ASSERT_EQ(exited.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  int status = exited.get();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  for (const char* sock :
       {"edgefd-big-cpu.sock", "edgefd-little-cpu.sock", "edgefd-movidius-ncs.sock"}) {
    EXPECT_FALSE(fs::exists(dir.path() / sock)) << sock;
  }
  EXPECT_TRUE(
      kubelet.WaitFor("edgefd.io/little-cpu", [](const auto& ep) { return !ep.stream_open; }));
  EXPECT_TRUE(fs::exists(dir.path() / "kubelet.sock"));  // never touches the kubelet's
}

TEST(DevicePluginCli, WithCdiAllocateNamesCdiDevicesAndTheSpecIsWritten) {
  TempDir dir;
  fs::create_directories(dir.path() / "cdi");
  FakeKubelet kubelet(dir.path());
  ASSERT_TRUE(kubelet.Start());
  pid_t pid = Spawn(
      dir.path(), {"--inventory", kInventory, "--cdi", "--cdi-dir", (dir.path() / "cdi").string()});
  ASSERT_TRUE(
      kubelet.WaitFor("edgefd.io/movidius-ncs", [](const auto& ep) { return !ep.lists.empty(); }));
  EXPECT_TRUE(fs::exists(dir.path() / "cdi" / "edgefd.io-device.json"));
  auto stub = kubelet.Dial("edgefd.io/movidius-ncs");
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("1-1.2");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  const auto& c = resp.container_responses(0);
  ASSERT_EQ(c.cdi_devices_size(), 1);
  EXPECT_EQ(c.cdi_devices(0).name(), "edgefd.io/device=movidius-ncs-1-1-2");
  EXPECT_EQ(c.envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.2");
  EXPECT_EQ(c.devices_size(), 1);
  // CDI or not, the device plugin never loads the API client's TLS and HTTP libraries (they
  // would double its memory): those live in edgefd-deviceplugin-dra.
  std::ifstream maps("/proc/" + std::to_string(pid) + "/maps");
  std::string mapped((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
  ASSERT_THAT(mapped, HasSubstr("libgrpc"));
  for (const char* lib : {"libcrypto", "libssl", "libcpprest"}) {
    EXPECT_THAT(mapped, ::testing::Not(HasSubstr(lib)));
  }
  EXPECT_EQ(StopAndWait(pid), 0);
}

TEST(DevicePluginCli, ModeHandsOverOrRefuses) {
  RunResult r = RunBinary("--mode gpu");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--mode 'gpu'"));
  // dra runs edgefd-deviceplugin-dra with the same arguments: its own usage errors show.
  r = RunBinary("--mode dra --inventory " + kInventory);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.output, HasSubstr("--node-name"));
  r = RunBinary("--mode=both --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("--kubelet-registry-dir"));
  r = RunBinary("--mode device-plugin --inventory " + kInventory + " --list");
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.output, HasSubstr("edgefd.io/little-cpu"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
