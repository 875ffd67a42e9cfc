#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "v1beta1/api.grpc.pb.h"

namespace edgefd::testing {

/// Stands in for the kubelet's device manager at the wire level: serves Registration on
/// `<dir>/kubelet.sock` and, for every accepted Register, does what the kubelet does: dials
/// the plugin's endpoint in the same directory, calls GetDevicePluginOptions and keeps a
/// ListAndWatch stream open, recording every list. A second Register for the same resource
/// replaces the first endpoint (its stream is cancelled), as in the kubelet.
class FakeKubelet {
 public:
  using Clock = std::chrono::steady_clock;

  /// What the fake knows of one registered resource.
  struct Endpoint {
    v1beta1::RegisterRequest request;
    v1beta1::DevicePluginOptions options;              ///< from GetDevicePluginOptions
    std::vector<v1beta1::ListAndWatchResponse> lists;  ///< every list received, in order
    std::vector<Clock::time_point> list_times;         ///< when each list arrived
    int registrations = 0;              ///< accepted Register calls for this resource
    Clock::time_point registered_at{};  ///< time of the last one
    bool stream_open = false;
  };

  explicit FakeKubelet(std::filesystem::path dir);
  ~FakeKubelet();

  /// Serves kubelet.sock; false when it cannot.
  bool Start();
  /// Stops serving, ends every ListAndWatch stream, removes kubelet.sock.
  void Stop();
  /// A kubelet restart: Stop, remove every socket in the directory (the kubelet wipes it on
  /// start), Start again.
  void Restart();

  /// Waits until `pred(endpoint)` holds for `resource`; false after `timeout`.
  bool WaitFor(const std::string& resource, const std::function<bool(const Endpoint&)>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /// A copy of what the fake knows about `resource`.
  std::optional<Endpoint> Get(const std::string& resource);
  /// Resource names registered so far.
  std::vector<std::string> Resources();
  /// The health `list` gives device `id` ("Healthy", "Unhealthy"); "absent" when not listed.
  static std::string HealthIn(const v1beta1::ListAndWatchResponse& list, const std::string& id);
  /// A WaitFor predicate: the newest list gives each device ID the health paired with it.
  static std::function<bool(const Endpoint&)> Lists(
      std::vector<std::pair<std::string, std::string>> want);

  /// A DevicePlugin client on the resource's current endpoint (as the kubelet calls Allocate).
  std::unique_ptr<v1beta1::DevicePlugin::Stub> Dial(const std::string& resource);

  /// Answer Register with this error instead of accepting (for failure tests).
  void FailRegistrations(std::optional<grpc::Status> status);
  /// Answer every accepted Register only `delay` after connecting to the plugin (a kubelet
  /// busy starting up): the plugin's deadline may pass while the kubelet holds its endpoint.
  void AnswerRegistrationsAfter(std::chrono::milliseconds delay);
  /// As kubelets since 1.3x do: refuse a Register for an endpoint whose stream is still open
  /// ("device plugin already connected"), counted as a rejection. Off by default, where a
  /// second Register replaces the first endpoint.
  void RefuseConnectedEndpoints(bool refuse);
  /// Waits until at least `n` Register calls were answered with that error.
  bool WaitForRejections(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  class RegistrationService;
  struct Connection {
    std::shared_ptr<grpc::Channel> channel;
    grpc::ClientContext context;
    std::thread reader;
  };
  grpc::Status OnRegister(const v1beta1::RegisterRequest& request);
  void CloseConnection(const std::string& resource);
  void CloseAll();

  const std::filesystem::path dir_;
  std::unique_ptr<RegistrationService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Endpoint> endpoints_;
  std::map<std::string, std::unique_ptr<Connection>> connections_;
  std::optional<grpc::Status> fail_;
  std::chrono::milliseconds answer_delay_{0};
  bool refuse_connected_ = false;
  int rejections_ = 0;
};

}  // namespace edgefd::testing
