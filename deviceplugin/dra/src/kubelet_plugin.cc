#include "edgefd/dra/kubelet_plugin.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "dra/v1/api.grpc.pb.h"
#include "dra/v1beta1/api.grpc.pb.h"
#include "edgefd/common/json.h"
#include "pluginregistration/v1/api.grpc.pb.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
namespace drav1 = ::k8s::io::kubelet::pkg::apis::dra::v1;
namespace drav1beta1 = ::k8s::io::kubelet::pkg::apis::dra::v1beta1;

namespace {

constexpr char kPluginType[] = "DRAPlugin";
// More claims than any pod has; a request beyond it is not the kubelet's.
constexpr int kMaxClaimsPerCall = 1024;

// The two versions of the service have the same messages in different packages.
struct V1 {
  using Service = drav1::DRAPlugin;
  using PrepareRequest = drav1::NodePrepareResourcesRequest;
  using PrepareResponse = drav1::NodePrepareResourcesResponse;
  using UnprepareRequest = drav1::NodeUnprepareResourcesRequest;
  using UnprepareResponse = drav1::NodeUnprepareResourcesResponse;
};
struct V1beta1 {
  using Service = drav1beta1::DRAPlugin;
  using PrepareRequest = drav1beta1::NodePrepareResourcesRequest;
  using PrepareResponse = drav1beta1::NodePrepareResourcesResponse;
  using UnprepareRequest = drav1beta1::NodeUnprepareResourcesRequest;
  using UnprepareResponse = drav1beta1::NodeUnprepareResourcesResponse;
};

// A few threads that run jobs in order; Stop runs what is queued, then joins.
class WorkQueue {
 public:
  void Start(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  bool Submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping and drained
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

class KubeletPlugin::Impl {
 public:
  Impl(ClaimHandler& handler, KubeletPluginOptions options)
      : handler_(handler), options_(std::move(options)) {}

  template <typename Api>
  class DraService;
  class RegistrationService;

  fs::path DriverDir() const { return options_.plugins_dir / "edgefd.io"; }
  fs::path DraSocket() const { return DriverDir() / "dra.sock"; }
  fs::path RegistrationSocket() const { return options_.registry_dir / "edgefd.io-reg.sock"; }

  Status Start();
  void Stop();

  // Fills one claim's answer (any version's message type); the claim's error, if any.
  template <typename Out>
  Status Prepare(const ClaimRef& ref, const Abandoned& abandoned, Out& out) {
    PrepareResult result = handler_.Prepare(ref, abandoned);
    std::lock_guard lock(mu_);
    if (!result) {
      stats_.prepare_errors++;
      spdlog::warn("NodePrepareResources: {}", result.error().message);
      // The kubelet reads the message as a protobuf string: UTF-8 only, whatever a device or
      // an API answer put in it.
      out.set_error(ValidUtf8(result.error().message));
      return result.error();
    }
    stats_.prepared_claims++;
    for (const PreparedDevice& d : *result) {
      auto* device = out.add_devices();
      if (!d.request.empty()) device->add_request_names(d.request);
      device->set_pool_name(d.pool);
      device->set_device_name(d.device);
      for (const std::string& id : d.cdi_ids) device->add_cdi_device_ids(id);
    }
    return Ok{};
  }

  template <typename Out>
  Status Unprepare(const ClaimRef& ref, const Abandoned& /*abandoned*/, Out& out) {
    Status done = handler_.Unprepare(ref);
    if (done) return done;
    std::lock_guard lock(mu_);
    stats_.unprepare_errors++;
    spdlog::warn("NodeUnprepareResources: {}", done.error().message);
    out.set_error(ValidUtf8(done.error().message));
    return done;
  }

  ClaimHandler& handler_;
  const KubeletPluginOptions options_;
  WorkQueue work_;
  std::unique_ptr<grpc::Service> v1_, v1beta1_, registration_;
  std::unique_ptr<grpc::Server> dra_server_, registration_server_;
  bool started_ = false;

  mutable std::mutex mu_;  // guards the state below
  RegistrationState state_;
  KubeletPluginStats stats_;
  std::function<void()> on_registered_;
};

template <typename Api>
class KubeletPlugin::Impl::DraService final : public Api::Service::CallbackService {
 public:
  explicit DraService(Impl& impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* NodePrepareResources(grpc::CallbackServerContext* context,
                                                 const typename Api::PrepareRequest* request,
                                                 typename Api::PrepareResponse* response) override {
    return Run(context, request, response, &KubeletPluginStats::prepare_calls,
               [this](const ClaimRef& ref, const Abandoned& abandoned, auto& out) {
                 return impl_.Prepare(ref, abandoned, out);
               });
  }

  grpc::ServerUnaryReactor* NodeUnprepareResources(
      grpc::CallbackServerContext* context, const typename Api::UnprepareRequest* request,
      typename Api::UnprepareResponse* response) override {
    return Run(context, request, response, &KubeletPluginStats::unprepare_calls,
               [this](const ClaimRef& ref, const Abandoned& abandoned, auto& out) {
                 return impl_.Unprepare(ref, abandoned, out);
               });
  }

 private:
  // Answers every claim of the request with `per_claim`, on a worker thread. A claim answered
  // kCancelled (the kubelet gave up on the call while it was worked, or the plugin is stopping)
  // ends the call CANCELLED, as a call found abandoned between claims does.
  template <typename Request, typename Response, typename PerClaim>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, const Request* request,
                                Response* response, uint64_t KubeletPluginStats::*calls,
                                PerClaim per_claim) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    {
      std::lock_guard lock(impl_.mu_);
      impl_.stats_.*calls += 1;
    }
    if (request->claims_size() > kMaxClaimsPerCall) {
      reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, "too many claims in one call"});
      return reactor;
    }
    bool queued = impl_.work_.Submit([this, context, request, response, reactor, per_claim] {
      // A call the kubelet gave up on (it cancelled, or its deadline passed) is not worked
      // further: the kubelet asks again, and meanwhile the workers serve calls it waits for.
      const Abandoned abandoned = [context] {
        return context->IsCancelled() || context->deadline() <= std::chrono::system_clock::now();
      };
      for (const auto& claim : request->claims()) {
        Status answered = abandoned()
                              ? Status(Error{"", ErrorCode::kCancelled})
                              : per_claim(ClaimRef{claim.namespace_(), claim.uid(), claim.name()},
                                          abandoned, (*response->mutable_claims())[claim.uid()]);
        if (!answered && answered.error().code == ErrorCode::kCancelled) {
          {
            std::lock_guard lock(impl_.mu_);
            impl_.stats_.abandoned_calls++;
          }
          spdlog::warn("the kubelet gave up on a call with {} claim(s); not working it further",
                       request->claims_size());
          reactor->Finish({grpc::StatusCode::CANCELLED, "the call was cancelled or timed out"});
          return;
        }
      }
      reactor->Finish(grpc::Status::OK);
    });
    if (!queued) {
      reactor->Finish({grpc::StatusCode::UNAVAILABLE, "the edgefd.io plugin is stopping"});
    }
    return reactor;
  }

  Impl& impl_;
};

class KubeletPlugin::Impl::RegistrationService final
    : public ::pluginregistration::Registration::CallbackService {
 public:
  explicit RegistrationService(Impl& impl) : impl_(impl) {}

  grpc::ServerUnaryReactor* GetInfo(grpc::CallbackServerContext* context,
                                    const ::pluginregistration::InfoRequest* /*request*/,
                                    ::pluginregistration::PluginInfo* response) override {
    response->set_type(kPluginType);
    response->set_name(std::string(kDriverName));
    response->set_endpoint(impl_.DraSocket().string());
    for (const std::string& s : impl_.options_.services) response->add_supported_versions(s);
    {
      std::lock_guard lock(impl_.mu_);
      impl_.state_.info_requests++;
    }
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* NotifyRegistrationStatus(
      grpc::CallbackServerContext* context, const ::pluginregistration::RegistrationStatus* request,
      ::pluginregistration::RegistrationStatusResponse* /*response*/) override {
    std::function<void()> callback;
    {
      std::lock_guard lock(impl_.mu_);
      impl_.state_.notifications++;
      impl_.state_.registered = request->plugin_registered();
      impl_.state_.error = request->error().substr(0, 1024);
      if (request->plugin_registered()) callback = impl_.on_registered_;
    }
    if (request->plugin_registered()) {
      spdlog::info("registered with the kubelet as DRA driver {}", kDriverName);
    } else {
      spdlog::error("the kubelet refused the registration of {}: {}", kDriverName,
                    request->error().substr(0, 1024));
    }
    if (callback) callback();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Impl& impl_;
};

namespace {

std::unique_ptr<grpc::Server> Serve(const fs::path& socket,
                                    const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket.string(), grpc::InsecureServerCredentials());
  for (grpc::Service* s : services) builder.RegisterService(s);
  return builder.BuildAndStart();
}

}  // namespace

Status KubeletPlugin::Impl::Start() {
  if (started_) return Error{"the DRA kubelet plugin is already started"};
  std::error_code ec;
  if (!fs::is_directory(options_.registry_dir, ec)) {
    return Error{options_.registry_dir.string() +
                 ": the kubelet's plugin registration directory does not exist (set "
                 "--kubelet-registry-dir)"};
  }
  fs::create_directories(DriverDir(), ec);
  if (ec) return Error{DriverDir().string() + ": cannot create: " + ec.message()};
  work_.Start(options_.workers);
  v1_ = std::make_unique<DraService<V1>>(*this);
  v1beta1_ = std::make_unique<DraService<V1beta1>>(*this);
  registration_ = std::make_unique<RegistrationService>(*this);
  dra_server_ = Serve(DraSocket(), {v1_.get(), v1beta1_.get()});
  if (!dra_server_) {
    work_.Stop();
    return Error{DraSocket().string() + ": cannot serve the DRA socket"};
  }
  registration_server_ = Serve(RegistrationSocket(), {registration_.get()});
  if (!registration_server_) {
    dra_server_->Shutdown();
    dra_server_->Wait();
    work_.Stop();
    return Error{RegistrationSocket().string() + ": cannot serve the registration socket"};
  }
  started_ = true;
  spdlog::info("DRA plugin on {}, registration on {}", DraSocket().string(),
               RegistrationSocket().string());
  return Ok{};
}

void KubeletPlugin::Impl::Stop() {
  if (!started_) return;
  started_ = false;
  // Gone from the watcher's directory first: the kubelet stops sending us claims.
  ::unlink(RegistrationSocket().c_str());
  registration_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  registration_server_->Wait();
  // Calls in flight finish; new ones are refused by Submit.
  work_.Stop();
  dra_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  dra_server_->Wait();
  ::unlink(DraSocket().c_str());
  registration_server_.reset();
  dra_server_.reset();
}

KubeletPlugin::KubeletPlugin(ClaimHandler& handler, KubeletPluginOptions options)
    : impl_(std::make_unique<Impl>(handler, std::move(options))) {}

KubeletPlugin::~KubeletPlugin() { Stop(); }

Status KubeletPlugin::Start() { return impl_->Start(); }
void KubeletPlugin::Stop() { impl_->Stop(); }
fs::path KubeletPlugin::DraSocket() const { return impl_->DraSocket(); }
fs::path KubeletPlugin::RegistrationSocket() const { return impl_->RegistrationSocket(); }

RegistrationState KubeletPlugin::Registration() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->state_;
}

KubeletPluginStats KubeletPlugin::Stats() const {
  std::lock_guard lock(impl_->mu_);
  return impl_->stats_;
}

void KubeletPlugin::SetOnRegistered(std::function<void()> callback) {
  std::lock_guard lock(impl_->mu_);
  impl_->on_registered_ = std::move(callback);
}

}  // namespace edgefd::dra
