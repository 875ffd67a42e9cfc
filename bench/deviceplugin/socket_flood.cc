// What a flood on a device-plugin socket costs the plugin: the real binary, registered with the
// stand-in kubelet, is sent many connections, each opening ListAndWatch streams it never reads
// and an Allocate request of several MiB, beside idle connections that send nothing. Reports
// the plugin's resident memory before, its peak (VmHWM) and whether the kubelet's own calls
// still work afterwards.
// Usage: socket_flood [--bin PATH] [--connections N] [--streams N] [--request-mib N]
//                     [--idle N] [--json]
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/measure.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "v1beta1/api.grpc.pb.h"

namespace edgefd {
namespace {

constexpr const char* kResource = "edgefd.io/little-cpu";

struct Flags {
  std::string bin = testing::DevicePluginBin();
  int connections = 64;
  int streams = 32;
  int request_mib = 4;
  int idle = 256;
  bool json = false;
};

Flags Parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--bin") f.bin = next();
    if (a == "--connections") f.connections = std::stoi(next());
    if (a == "--streams") f.streams = std::stoi(next());
    if (a == "--request-mib") f.request_mib = std::stoi(next());
    if (a == "--idle") f.idle = std::stoi(next());
    if (a == "--json") f.json = true;
  }
  return f;
}

UniqueFd IdleConnection(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fd.Reset();
  return fd;
}

// One flooding connection: `streams` ListAndWatch calls never read, one large Allocate.
struct Flooder {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1beta1::DevicePlugin::Stub> stub;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientAsyncReader<v1beta1::ListAndWatchResponse>>> watches;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1beta1::AllocateResponse>> allocate;
  v1beta1::AllocateResponse answer;
  grpc::Status status;
};

int Main(int argc, char** argv) {
  const Flags f = Parse(argc, argv);
  testing::TempDir dir;
  testing::FakeKubelet kubelet(dir.path());
  if (!kubelet.Start()) return 1;
  const std::string inventory = (testing::TestdataDir() / "deviceplugin/rk3399-ncs.yaml").string();
  testing::Child plugin({f.bin, "--kubelet-dir", dir.path().string(), "--inventory", inventory,
                         "--log-level", "error"});
  auto streaming = [](const testing::FakeKubelet::Endpoint& ep) { return !ep.lists.empty(); };
  if (!plugin.started() || !kubelet.WaitFor(kResource, streaming)) {
    std::fprintf(stderr, "the plugin did not register: %s\n", plugin.err().c_str());
    return 1;
  }
  const std::string socket = (dir.path() / "edgefd-little-cpu.sock").string();
  const long before_kb = testing::ProcStatus(plugin.pid(), "VmRSS");

  std::vector<UniqueFd> idle;
  for (int i = 0; i < f.idle; ++i) idle.push_back(IdleConnection(socket));
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Flooder>> flood;
  v1beta1::AllocateRequest big;
  auto* container = big.add_container_requests();
  const std::string id(1024, 'x');
  for (int i = 0; i < f.request_mib * 1024; ++i) container->add_devices_ids(id);
  int pending = 0;
  for (int c = 0; c < f.connections; ++c) {
    auto fl = std::make_unique<Flooder>();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
    args.SetMaxSendMessageSize(-1);
    fl->channel =
        grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
    fl->stub = v1beta1::DevicePlugin::NewStub(fl->channel);
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
    for (int s = 0; s < f.streams; ++s) {
      fl->contexts.push_back(std::make_unique<grpc::ClientContext>());
      // Streams past the server's limit wait on this side for a slot: this ends them.
      fl->contexts.back()->set_deadline(deadline);
      fl->watches.push_back(
          fl->stub->AsyncListAndWatch(fl->contexts.back().get(), v1beta1::Empty(), &cq, fl.get()));
      ++pending;
    }
    fl->contexts.push_back(std::make_unique<grpc::ClientContext>());
    fl->contexts.back()->set_deadline(deadline);
    fl->allocate = fl->stub->AsyncAllocate(fl->contexts.back().get(), big, &cq);
    fl->allocate->Finish(&fl->answer, &fl->status, fl.get());
    ++pending;
    flood.push_back(std::move(fl));
  }
  // Every stream started (or refused) and every Allocate answered: the plugin has seen it all
  // (streams still open end at their deadline, after which the peak is read).
  int refused = 0;
  for (; pending > 0; --pending) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    refused += ok ? 0 : 1;
  }
  int allocate_errors = 0;
  for (const auto& fl : flood) allocate_errors += fl->status.ok() ? 0 : 1;
  const long peak_kb = testing::ProcStatus(plugin.pid(), "VmHWM");
  const long during_kb = testing::ProcStatus(plugin.pid(), "VmRSS");
  // Does the kubelet still get answers?
  v1beta1::AllocateRequest small;
  small.add_container_requests()->add_devices_ids("cpu0");
  v1beta1::AllocateResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  const bool kubelet_ok = kubelet.Dial(kResource)->Allocate(&ctx, small, &response).ok();
  for (const auto& fl : flood) {
    for (const auto& c : fl->contexts) c->TryCancel();
  }
  plugin.Terminate();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }

  const Json report = {{"connections", f.connections},
                       {"streams_per_connection", f.streams},
                       {"request_mib", f.request_mib},
                       {"idle_connections", f.idle},
                       {"rss_before_mib", RoundTo(before_kb / 1024.0, 1)},
                       {"rss_during_mib", RoundTo(during_kb / 1024.0, 1)},
                       {"peak_rss_mib", RoundTo(peak_kb / 1024.0, 1)},
                       {"streams_refused", refused},
                       {"allocates_refused", allocate_errors},
                       {"kubelet_allocate_ok", kubelet_ok}};
  if (f.json) {
    std::printf("%s\n", DumpJson(report).c_str());
  } else {
    std::printf("%s\n", report.dump(2).c_str());
  }
  return kubelet_ok ? 0 : 1;
}

}  // namespace
}  // namespace edgefd

int main(int argc, char** argv) { return edgefd::Main(argc, argv); }
