#pragma once

// Stands in for the kubelet's DRA side at the wire level: its plugin watcher (inotify on the
// registration directory; every new socket is dialled, asked GetInfo, validated as the kubelet
// validates a DRA plugin, and told the outcome with NotifyRegistrationStatus) and its DRA
// manager (NodePrepareResources / NodeUnprepareResources through the newest service version
// both sides support, as the kubelet picks it).
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd::testing {

class FakeDraKubelet {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    /// Services this kubelet knows, newest first: 1.34+ {"v1.DRAPlugin","v1beta1.DRAPlugin"},
    /// 1.32-1.33 {"v1beta1.DRAPlugin"}.
    std::vector<std::string> services = {"v1.DRAPlugin", "v1beta1.DRAPlugin"};
  };

  /// What the watcher knows about one registration socket.
  struct Plugin {
    std::string socket;                 ///< registration socket path
    std::string type, name, endpoint;   ///< from GetInfo
    std::vector<std::string> versions;  ///< supported_versions from GetInfo
    std::string chosen;                 ///< the service the kubelet will call; "" if none
    std::string error;                  ///< why registration failed; "" on success
    bool registered = false;
    int registrations = 0;
    Clock::time_point registered_at{};
  };

  /// One device of a prepared claim, whichever version answered.
  struct Device {
    std::vector<std::string> requests;
    std::string pool, device;
    std::vector<std::string> cdi_ids;
  };
  struct ClaimAnswer {
    std::vector<Device> devices;
    std::string error;
  };
  struct Claim {
    std::string ns, uid, name;
  };

  FakeDraKubelet(std::filesystem::path registry_dir, Options options);
  explicit FakeDraKubelet(std::filesystem::path registry_dir)
      : FakeDraKubelet(std::move(registry_dir), Options{}) {}
  ~FakeDraKubelet();

  /// Starts watching (registering sockets already there); false when the directory cannot
  /// be watched.
  bool Start();
  void Stop();

  /// Waits until a plugin registered under `name` satisfies `pred`.
  bool WaitFor(const std::string& name, const std::function<bool(const Plugin&)>& pred,
               std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::optional<Plugin> Get(const std::string& name);

  /// NodePrepareResources for `claims` on the plugin registered as `name`: the answer by
  /// claim UID, or an Error when the call itself failed. `timeout` is the call's deadline
  /// (the kubelet's own is 45 s).
  Result<std::map<std::string, ClaimAnswer>> Prepare(
      const std::string& name, const std::vector<Claim>& claims,
      std::chrono::milliseconds timeout = std::chrono::seconds(45));
  /// NodeUnprepareResources: the error by claim UID ("" on success).
  Result<std::map<std::string, std::string>> Unprepare(const std::string& name,
                                                       const std::vector<Claim>& claims);

 private:
  void Loop();
  void RegisterOnce(const std::string& socket);
  void Register(const std::string& socket);

  const std::filesystem::path dir_;
  const Options options_;
  UniqueFd inotify_;
  UniqueFd wake_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Plugin> plugins_;  // by driver name
  bool stop_ = false;
  std::map<std::string, uint64_t> handled_;  // socket path -> inode registered; Loop's alone
};

}  // namespace edgefd::testing
