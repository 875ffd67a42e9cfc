#include "edgefd/testing/fake_kubelet.h"

#include <system_error>
#include <thread>

namespace edgefd::testing {
namespace fs = std::filesystem;

class FakeKubelet::RegistrationService final : public v1beta1::Registration::Service {
 public:
  explicit RegistrationService(FakeKubelet& kubelet) : kubelet_(kubelet) {}
  grpc::Status Register(grpc::ServerContext*, const v1beta1::RegisterRequest* request,
                        v1beta1::Empty*) override {
    return kubelet_.OnRegister(*request);
  }

 private:
  FakeKubelet& kubelet_;
};

FakeKubelet::FakeKubelet(fs::path dir) : dir_(std::move(dir)) {}

FakeKubelet::~FakeKubelet() { Stop(); }

bool FakeKubelet::Start() {
  service_ = std::make_unique<RegistrationService>(*this);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + (dir_ / "kubelet.sock").string(),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  return server_ != nullptr;
}

void FakeKubelet::Stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_.reset();
  }
  service_.reset();
  CloseAll();
  std::error_code ec;
  fs::remove(dir_ / "kubelet.sock", ec);
}

void FakeKubelet::Restart() {
  Stop();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.is_socket(ec)) fs::remove(entry.path(), ec);
  }
  Start();
}

void FakeKubelet::AnswerRegistrationsAfter(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  answer_delay_ = delay;
}

void FakeKubelet::RefuseConnectedEndpoints(bool refuse) {
  std::lock_guard lock(mu_);
  refuse_connected_ = refuse;
}

void FakeKubelet::FailRegistrations(std::optional<grpc::Status> status) {
  std::lock_guard lock(mu_);
  fail_ = std::move(status);
}

bool FakeKubelet::WaitForRejections(int n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return rejections_ >= n; });
}

grpc::Status FakeKubelet::OnRegister(const v1beta1::RegisterRequest& request) {
  {
    std::lock_guard lock(mu_);
    if (fail_) {
      ++rejections_;
      cv_.notify_all();
      return *fail_;
    }
  }
  // The kubelet's own checks: supported version, a resource name with a domain, and an
  // endpoint that is a file name in its directory.
  if (request.version() != "v1beta1") {
    return {grpc::StatusCode::INVALID_ARGUMENT, "unsupported version " + request.version()};
  }
  if (request.resource_name().find('/') == std::string::npos) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "bad resource name " + request.resource_name()};
  }
  if (request.endpoint().empty() || request.endpoint().find('/') != std::string::npos) {
    return {grpc::StatusCode::INVALID_ARGUMENT, "bad endpoint " + request.endpoint()};
  }
  const std::string resource = request.resource_name();
  {
    std::lock_guard lock(mu_);
    auto it = endpoints_.find(resource);
    if (refuse_connected_ && it != endpoints_.end() && it->second.stream_open &&
        it->second.request.endpoint() == request.endpoint()) {
      ++rejections_;
      cv_.notify_all();
      return {grpc::StatusCode::UNKNOWN,
              "device plugin already connected: " + (dir_ / request.endpoint()).string()};
    }
  }
  CloseConnection(resource);  // a new registration replaces the old endpoint

  auto conn = std::make_unique<Connection>();
  conn->channel = grpc::CreateChannel("unix:" + (dir_ / request.endpoint()).string(),
                                      grpc::InsecureChannelCredentials());
  auto stub = v1beta1::DevicePlugin::NewStub(conn->channel);
  v1beta1::DevicePluginOptions options;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = stub->GetDevicePluginOptions(&ctx, v1beta1::Empty(), &options);
    if (!s.ok()) {
      return {
          grpc::StatusCode::FAILED_PRECONDITION,
          "cannot call GetDevicePluginOptions on " + request.endpoint() + ": " + s.error_message()};
    }
  }
  {
    std::lock_guard lock(mu_);
    Endpoint& ep = endpoints_[resource];
    ep.request = request;
    ep.options = options;
    ep.registrations++;
    ep.registered_at = Clock::now();
    ep.stream_open = true;
  }
  Connection* raw = conn.get();
  conn->reader = std::thread([this, raw, resource, stub = std::move(stub)] {
    auto reader = stub->ListAndWatch(&raw->context, v1beta1::Empty());
    v1beta1::ListAndWatchResponse response;
    while (reader->Read(&response)) {
      std::lock_guard lock(mu_);
      Endpoint& ep = endpoints_[resource];
      ep.lists.push_back(response);
      ep.list_times.push_back(Clock::now());
      cv_.notify_all();
    }
    reader->Finish();
    std::lock_guard lock(mu_);
    endpoints_[resource].stream_open = false;
    cv_.notify_all();
  });
  {
    std::lock_guard lock(mu_);
    connections_[resource] = std::move(conn);
    cv_.notify_all();
  }
  std::chrono::milliseconds delay;
  {
    std::lock_guard lock(mu_);
    delay = answer_delay_;
  }
  std::this_thread::sleep_for(delay);
  return grpc::Status::OK;
}

void FakeKubelet::CloseConnection(const std::string& resource) {
  std::unique_ptr<Connection> conn;
  {
    std::lock_guard lock(mu_);
    auto it = connections_.find(resource);
    if (it == connections_.end()) return;
    conn = std::move(it->second);
    connections_.erase(it);
  }
  conn->context.TryCancel();
  conn->reader.join();
}

void FakeKubelet::CloseAll() {
  std::vector<std::string> names;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, c] : connections_) names.push_back(name);
  }
  for (const std::string& name : names) CloseConnection(name);
}

bool FakeKubelet::WaitFor(const std::string& resource,
                          const std::function<bool(const Endpoint&)>& pred,
                          std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = endpoints_.find(resource);
    return it != endpoints_.end() && pred(it->second);
  });
}

std::optional<FakeKubelet::Endpoint> FakeKubelet::Get(const std::string& resource) {
  std::lock_guard lock(mu_);
  auto it = endpoints_.find(resource);
  if (it == endpoints_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> FakeKubelet::Resources() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, ep] : endpoints_) names.push_back(name);
  return names;
}

std::string FakeKubelet::HealthIn(const v1beta1::ListAndWatchResponse& list,
                                  const std::string& id) {
  for (const auto& d : list.devices()) {
    if (d.id() == id) return d.health();
  }
  return "absent";
}

std::function<bool(const FakeKubelet::Endpoint&)> FakeKubelet::Lists(
    std::vector<std::pair<std::string, std::string>> want) {
  return [want = std::move(want)](const Endpoint& ep) {
    if (ep.lists.empty()) return false;
    for (const auto& [id, health] : want) {
      if (HealthIn(ep.lists.back(), id) != health) return false;
    }
    return true;
  };
}

std::unique_ptr<v1beta1::DevicePlugin::Stub> FakeKubelet::Dial(const std::string& resource) {
  std::string endpoint;
  {
    std::lock_guard lock(mu_);
    auto it = endpoints_.find(resource);
    if (it == endpoints_.end()) return nullptr;
    endpoint = it->second.request.endpoint();
  }
  return v1beta1::DevicePlugin::NewStub(grpc::CreateChannel("unix:" + (dir_ / endpoint).string(),
                                                            grpc::InsecureChannelCredentials()));
}

}  // namespace edgefd::testing
