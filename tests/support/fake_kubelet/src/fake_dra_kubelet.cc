#include "edgefd/testing/fake_dra_kubelet.h"

#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <algorithm>

#include "dra/v1/api.grpc.pb.h"
#include "dra/v1beta1/api.grpc.pb.h"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace edgefd::testing {
namespace fs = std::filesystem;
namespace drav1 = ::k8s::io::kubelet::pkg::apis::dra::v1;
namespace drav1beta1 = ::k8s::io::kubelet::pkg::apis::dra::v1beta1;

namespace {

std::shared_ptr<grpc::Channel> Dial(const std::string& socket) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // A socket seen the moment it was bound may not listen yet: retry fast, not after 1 s.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 100);
  return grpc::CreateCustomChannel("unix:" + socket, grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_wait_for_ready(true);
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

// The kubelet's two service versions: the same messages in different packages.
template <typename Pb>
struct Api;
template <>
struct Api<drav1::DRAPlugin> {
  using Stub = drav1::DRAPlugin::Stub;
  using PrepareRequest = drav1::NodePrepareResourcesRequest;
  using PrepareResponse = drav1::NodePrepareResourcesResponse;
  using UnprepareRequest = drav1::NodeUnprepareResourcesRequest;
  using UnprepareResponse = drav1::NodeUnprepareResourcesResponse;
};
template <>
struct Api<drav1beta1::DRAPlugin> {
  using Stub = drav1beta1::DRAPlugin::Stub;
  using PrepareRequest = drav1beta1::NodePrepareResourcesRequest;
  using PrepareResponse = drav1beta1::NodePrepareResourcesResponse;
  using UnprepareRequest = drav1beta1::NodeUnprepareResourcesRequest;
  using UnprepareResponse = drav1beta1::NodeUnprepareResourcesResponse;
};

template <typename Request>
void Fill(Request& request, const std::vector<FakeDraKubelet::Claim>& claims) {
  for (const FakeDraKubelet::Claim& c : claims) {
    auto* claim = request.add_claims();
    claim->set_namespace_(c.ns);
    claim->set_uid(c.uid);
    claim->set_name(c.name);
  }
}

template <typename Service>
Result<std::map<std::string, FakeDraKubelet::ClaimAnswer>> CallPrepare(
    const std::shared_ptr<grpc::Channel>& channel, const std::vector<FakeDraKubelet::Claim>& claims,
    std::chrono::milliseconds timeout) {
  using A = Api<Service>;
  typename A::PrepareRequest request;
  Fill(request, claims);
  typename A::PrepareResponse response;
  auto context = Context(timeout);
  grpc::Status status =
      Service::NewStub(channel)->NodePrepareResources(context.get(), request, &response);
  if (!status.ok()) return Error{"NodePrepareResources: " + status.error_message()};
  std::map<std::string, FakeDraKubelet::ClaimAnswer> out;
  for (const auto& [uid, answer] : response.claims()) {
    FakeDraKubelet::ClaimAnswer a;
    a.error = answer.error();
    for (const auto& d : answer.devices()) {
      a.devices.push_back({{d.request_names().begin(), d.request_names().end()},
                           d.pool_name(),
                           d.device_name(),
                           {d.cdi_device_ids().begin(), d.cdi_device_ids().end()}});
    }
    out[uid] = std::move(a);
  }
  return out;
}

template <typename Service>
Result<std::map<std::string, std::string>> CallUnprepare(
    const std::shared_ptr<grpc::Channel>& channel,
    const std::vector<FakeDraKubelet::Claim>& claims) {
  using A = Api<Service>;
  typename A::UnprepareRequest request;
  Fill(request, claims);
  typename A::UnprepareResponse response;
  auto context = Context(std::chrono::seconds(45));
  grpc::Status status =
      Service::NewStub(channel)->NodeUnprepareResources(context.get(), request, &response);
  if (!status.ok()) return Error{"NodeUnprepareResources: " + status.error_message()};
  std::map<std::string, std::string> out;
  for (const auto& [uid, answer] : response.claims()) out[uid] = answer.error();
  return out;
}

}  // namespace

FakeDraKubelet::FakeDraKubelet(fs::path registry_dir, Options options)
    : dir_(std::move(registry_dir)), options_(std::move(options)) {}

FakeDraKubelet::~FakeDraKubelet() { Stop(); }

bool FakeDraKubelet::Start() {
  inotify_.Reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  wake_.Reset(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!inotify_.valid() || !wake_.valid()) return false;
  if (inotify_add_watch(inotify_.get(), dir_.c_str(), IN_CREATE | IN_MOVED_TO | IN_DELETE) < 0) {
    return false;
  }
  thread_ = std::thread([this] { Loop(); });
  return true;
}

void FakeDraKubelet::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof one);
  thread_.join();
}

void FakeDraKubelet::Loop() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path().extension() == ".sock") RegisterOnce(entry.path().string());
  }
  for (;;) {
    pollfd fds[2] = {{inotify_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    alignas(inotify_event) char buf[4096];
    ssize_t n = read(inotify_.get(), buf, sizeof buf);
    for (char* p = buf; n > 0 && p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + ev->len;
      if (ev->len == 0) continue;
      fs::path path = dir_ / ev->name;
      if (path.extension() != ".sock") continue;
      if (ev->mask & (IN_CREATE | IN_MOVED_TO)) {
        RegisterOnce(path.string());
      } else if (ev->mask & IN_DELETE) {
        handled_.erase(path.string());
        std::lock_guard lock(mu_);
        for (auto& [name, plugin] : plugins_) {
          if (plugin.socket == path.string()) plugin.registered = false;
        }
        cv_.notify_all();
      }
    }
  }
}

// A socket created while the loop starts is seen twice, by the first scan and by the watch
// (it was: under load, a plugin was registered twice and told so twice). The kubelet
// registers a socket file once, and again only when it is made anew.
void FakeDraKubelet::RegisterOnce(const std::string& socket) {
  struct stat st {};
  if (stat(socket.c_str(), &st) != 0) return;  // gone again
  uint64_t& inode = handled_[socket];
  if (inode == st.st_ino) return;
  inode = st.st_ino;
  Register(socket);
}

void FakeDraKubelet::Register(const std::string& socket) {
  auto stub = ::pluginregistration::Registration::NewStub(Dial(socket));
  ::pluginregistration::PluginInfo info;
  auto context = Context(std::chrono::seconds(5));
  grpc::Status status = stub->GetInfo(context.get(), ::pluginregistration::InfoRequest(), &info);
  if (!status.ok()) return;  // not a plugin (or gone again)
  Plugin plugin;
  plugin.socket = socket;
  plugin.type = info.type();
  plugin.name = info.name();
  plugin.endpoint = info.endpoint();
  plugin.versions.assign(info.supported_versions().begin(), info.supported_versions().end());
  // As the kubelet: the plugin's list in its order, the first service the kubelet knows.
  for (const std::string& v : plugin.versions) {
    if (std::find(options_.services.begin(), options_.services.end(), v) !=
        options_.services.end()) {
      plugin.chosen = v;
      break;
    }
  }
  std::error_code ec;
  if (plugin.type != "DRAPlugin") {
    plugin.error = "plugin type " + plugin.type + " is not handled here";
  } else if (plugin.name.empty()) {
    plugin.error = "empty driver name";
  } else if (plugin.chosen.empty()) {
    plugin.error = "none of the services supported by the plugin are supported by the kubelet";
  } else if (!fs::exists(plugin.endpoint, ec)) {
    plugin.error = "endpoint " + plugin.endpoint + " does not exist";
  }
  ::pluginregistration::RegistrationStatus verdict;
  verdict.set_plugin_registered(plugin.error.empty());
  verdict.set_error(plugin.error);
  ::pluginregistration::RegistrationStatusResponse ignored;
  auto notify_context = Context(std::chrono::seconds(5));
  status = stub->NotifyRegistrationStatus(notify_context.get(), verdict, &ignored);
  std::lock_guard lock(mu_);
  Plugin& stored = plugins_[plugin.name];
  int registrations = stored.registrations;
  stored = plugin;
  stored.registered = status.ok() && plugin.error.empty();
  stored.registrations = registrations + (stored.registered ? 1 : 0);
  stored.registered_at = Clock::now();
  cv_.notify_all();
}

bool FakeDraKubelet::WaitFor(const std::string& name,
                             const std::function<bool(const Plugin&)>& pred,
                             std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = plugins_.find(name);
    return it != plugins_.end() && pred(it->second);
  });
}

std::optional<FakeDraKubelet::Plugin> FakeDraKubelet::Get(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = plugins_.find(name);
  if (it == plugins_.end()) return std::nullopt;
  return it->second;
}

Result<std::map<std::string, FakeDraKubelet::ClaimAnswer>> FakeDraKubelet::Prepare(
    const std::string& name, const std::vector<Claim>& claims, std::chrono::milliseconds timeout) {
  auto plugin = Get(name);
  if (!plugin || !plugin->registered) return Error{"DRA driver " + name + " is not registered"};
  auto channel = Dial(plugin->endpoint);
  return plugin->chosen == "v1.DRAPlugin"
             ? CallPrepare<drav1::DRAPlugin>(channel, claims, timeout)
             : CallPrepare<drav1beta1::DRAPlugin>(channel, claims, timeout);
}

Result<std::map<std::string, std::string>> FakeDraKubelet::Unprepare(
    const std::string& name, const std::vector<Claim>& claims) {
  auto plugin = Get(name);
  if (!plugin || !plugin->registered) return Error{"DRA driver " + name + " is not registered"};
  auto channel = Dial(plugin->endpoint);
  return plugin->chosen == "v1.DRAPlugin" ? CallUnprepare<drav1::DRAPlugin>(channel, claims)
                                          : CallUnprepare<drav1beta1::DRAPlugin>(channel, claims);
}

}  // namespace edgefd::testing
