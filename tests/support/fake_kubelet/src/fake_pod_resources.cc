#include "edgefd/testing/fake_pod_resources.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>

#include "podresources/v1/api.grpc.pb.h"

namespace edgefd::testing {

// Callback API, so a hung call holds no thread: its reactor waits in `held_` until released.
class FakePodResources::Service final : public ::v1::PodResourcesLister::CallbackService {
 public:
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context,
                                 const ::v1::ListPodResourcesRequest* /*request*/,
                                 ::v1::ListPodResourcesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::function<void()> hook;
    {
      std::lock_guard lock(mu_);
      hook = hook_;
    }
    if (hook) hook();
    std::lock_guard lock(mu_);
    ++calls_;
    called_.notify_all();
    Fill(*response);
    if (hang_) {
      held_.push_back(reactor);
    } else {
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }

  void Assign(Assignment a) {
    std::lock_guard lock(mu_);
    assignments_.push_back(std::move(a));
  }
  void AssignClaim(ClaimAssignment a) {
    std::lock_guard lock(mu_);
    claims_.push_back(std::move(a));
  }
  void Clear() {
    std::lock_guard lock(mu_);
    assignments_.clear();
    claims_.clear();
  }
  void OnList(std::function<void()> hook) {
    std::lock_guard lock(mu_);
    hook_ = std::move(hook);
  }
  void Hang(bool hang) {
    std::vector<grpc::ServerUnaryReactor*> release;
    {
      std::lock_guard lock(mu_);
      hang_ = hang;
      if (!hang) release.swap(held_);
    }
    for (auto* r : release) r->Finish(grpc::Status::OK);
  }
  void Cancel() {
    std::vector<grpc::ServerUnaryReactor*> release;
    {
      std::lock_guard lock(mu_);
      release.swap(held_);
    }
    for (auto* r : release) r->Finish({grpc::StatusCode::UNAVAILABLE, "kubelet stopping"});
  }
  int Calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  bool WaitForCalls(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return called_.wait_for(lock, timeout, [&] { return calls_ >= n; });
  }

 private:
  // As the kubelet groups them: one entry per pod, one per container, one per resource.
  static ::v1::ContainerResources& Container(::v1::ListPodResourcesResponse& out,
                                             const std::string& ns, const std::string& pod_name,
                                             const std::string& name) {
    ::v1::PodResources* pod = nullptr;
    for (auto& p : *out.mutable_pod_resources()) {
      if (p.namespace_() == ns && p.name() == pod_name) pod = &p;
    }
    if (pod == nullptr) {
      pod = out.add_pod_resources();
      pod->set_namespace_(ns);
      pod->set_name(pod_name);
    }
    for (auto& c : *pod->mutable_containers()) {
      if (c.name() == name) return c;
    }
    ::v1::ContainerResources* container = pod->add_containers();
    container->set_name(name);
    return *container;
  }

  void Fill(::v1::ListPodResourcesResponse& out) const {
    for (const Assignment& a : assignments_) {
      ::v1::ContainerDevices* devices = Container(out, a.ns, a.pod, a.container).add_devices();
      devices->set_resource_name(a.resource);
      for (const std::string& id : a.ids) devices->add_device_ids(id);
    }
    for (const ClaimAssignment& a : claims_) {
      ::v1::DynamicResource* claim =
          Container(out, a.ns, a.pod, a.container).add_dynamic_resources();
      claim->set_claim_name(a.claim);
      claim->set_claim_namespace(a.ns);
      for (const std::string& device : a.devices) {
        ::v1::ClaimResource* r = claim->add_claim_resources();
        r->set_driver_name(a.driver);
        r->set_pool_name("node");
        r->set_device_name(device);
      }
    }
  }

  mutable std::mutex mu_;
  std::condition_variable called_;
  std::vector<Assignment> assignments_;
  std::vector<ClaimAssignment> claims_;
  std::vector<grpc::ServerUnaryReactor*> held_;
  std::function<void()> hook_;
  bool hang_ = false;
  int calls_ = 0;
};

FakePodResources::FakePodResources(std::filesystem::path socket)
    : socket_(std::move(socket)), service_(std::make_unique<Service>()) {}

FakePodResources::~FakePodResources() { Stop(); }

bool FakePodResources::Start() {
  if (server_) return true;
  std::error_code ec;
  std::filesystem::create_directories(socket_.parent_path(), ec);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  return server_ != nullptr;
}

void FakePodResources::Stop() {
  if (!server_) return;
  service_->Cancel();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  server_->Wait();
  server_.reset();
  std::error_code ec;
  std::filesystem::remove(socket_, ec);
}

void FakePodResources::Assign(Assignment assignment) { service_->Assign(std::move(assignment)); }
void FakePodResources::AssignClaim(ClaimAssignment assignment) {
  service_->AssignClaim(std::move(assignment));
}
void FakePodResources::Clear() { service_->Clear(); }
void FakePodResources::OnList(std::function<void()> hook) { service_->OnList(std::move(hook)); }
void FakePodResources::Hang(bool hang) { service_->Hang(hang); }
int FakePodResources::Calls() const { return service_->Calls(); }
bool FakePodResources::WaitForCalls(int n, std::chrono::milliseconds timeout) {
  return service_->WaitForCalls(n, timeout);
}

}  // namespace edgefd::testing
