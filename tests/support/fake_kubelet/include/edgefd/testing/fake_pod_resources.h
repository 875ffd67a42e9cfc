#pragma once

// Stands in for the kubelet's PodResources API v1 (v1.PodResourcesLister/List) at the wire
// level: a real gRPC server of the real proto on a unix socket, answering with what the test
// says the device manager assigned, or answering late, or not at all.
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace grpc {
class Server;
}

namespace edgefd::testing {

class FakePodResources {
 public:
  /// One container's devices of one resource, as the device manager assigned them.
  struct Assignment {
    std::string ns, pod, container, resource;
    std::vector<std::string> ids;
  };
  /// One container's ResourceClaim (in the pod's namespace), with devices of `driver`.
  struct ClaimAssignment {
    std::string ns, pod, container, claim;
    std::vector<std::string> devices;
    std::string driver;
  };

  explicit FakePodResources(std::filesystem::path socket);
  ~FakePodResources();
  FakePodResources(const FakePodResources&) = delete;
  FakePodResources& operator=(const FakePodResources&) = delete;

  /// Serves the socket; false when it cannot.
  bool Start();
  /// Stops serving (calls held by Hang are cancelled) and removes the socket. Idempotent.
  void Stop();

  /// Adds what List reports from now on.
  void Assign(Assignment assignment);
  /// Adds a claim a container uses to what List reports from now on.
  void AssignClaim(ClaimAssignment assignment);
  /// Forgets every assignment (the pods ended).
  void Clear();
  /// While on, List calls get no answer until Hang(false) or Stop (a kubelet that is stuck).
  void Hang(bool hang);
  /// Runs `hook` at the start of every List call, before it is answered (what the caller had
  /// done by the time it asked).
  void OnList(std::function<void()> hook);
  /// List calls received so far.
  int Calls() const;
  /// Waits until at least `n` List calls arrived; false after `timeout`.
  bool WaitForCalls(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::filesystem::path& socket() const { return socket_; }

  class Service;

 private:
  const std::filesystem::path socket_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace edgefd::testing
